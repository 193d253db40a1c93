"""Redis's rendered config: loopback, configured port, no persistence, foreground."""

from __future__ import annotations

from deploy.stack.redis import render_redis_conf
from streams.settings import RedisSettings


def test_redis_conf_binds_loopback_without_persistence(tmp_path):
    lines = render_redis_conf(RedisSettings(host="127.0.0.1", port=26379), tmp_path).splitlines()
    assert "bind 127.0.0.1" in lines
    assert "port 26379" in lines
    assert "daemonize no" in lines  # the process helper owns the pid and the log
    assert 'save ""' in lines and "appendonly no" in lines
    assert f"dir {tmp_path.resolve()}" in lines
