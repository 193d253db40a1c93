"""Redis from Debian's `redis-server`, as a child process with its own config (no persistence)."""

from __future__ import annotations

import shutil
from pathlib import Path

from deploy.stack.probes import redis_pong
from deploy.stack.service import Service
from streams.settings import RedisSettings, Settings


def render_redis_conf(redis: RedisSettings, data_dir: Path) -> str:
    """Loopback only, no RDB/AOF (the online store is rebuilt from the stream), logs to stdout."""
    return (
        f"bind {redis.host}\n"
        f"port {redis.port}\n"
        "protected-mode yes\n"
        "daemonize no\n"
        'save ""\n'
        "appendonly no\n"
        f"dir {data_dir.resolve()}\n"
        'logfile ""\n'
    )


class RedisService(Service):
    name = "redis"
    start_timeout_s = 20.0
    cause_pattern = r"# (Failed|Could not|Fatal)|Address already in use|Bad directive"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.run_dir)
        self.redis = settings.redis

    @property
    def port(self) -> int:
        return self.redis.port

    def healthy(self) -> bool:
        return redis_pong(self.redis.host, self.redis.port)

    def prepare(self) -> None:
        self._binary()

    @staticmethod
    def _binary() -> str:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: run `make setup` (installs Debian's redis-server)")
        return binary

    def _launch(self) -> None:
        binary = self._binary()
        self.directory.mkdir(parents=True, exist_ok=True)
        conf = self.directory / "redis.conf"
        conf.write_text(render_redis_conf(self.redis, self.directory))
        self.process.start([binary, str(conf)], cwd=self.directory)
