"""`stack down` leaves no process and no open port, and a second `stack up` brings everything back.

conftest.py runs this module after all others, so no other test loses its stack mid-way.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from deploy.stack.probes import port_open
from deploy.stack.stack import status
from streams.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration


def _clickcast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def _group_members(pgid: int) -> set[int]:
    """Pids of live processes in a process group (Triton's python-backend stubs included)."""
    members = set()
    for entry in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = entry.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[2]) == pgid and fields[0] != "Z":
            members.add(int(entry.parent.name))
    return members


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_down_leaves_nothing_running_and_up_starts_again(stack):
    pids = set().union(*(_group_members(s.pid) for s in status(stack)))
    assert len(pids) >= 3
    ports = [
        stack.kafka.port,
        stack.kafka.controller_port,
        stack.redis.port,
        stack.triton.http_port,
        stack.triton.grpc_port,
        stack.triton.metrics_port,
    ]

    down = _clickcast("stack", "down")
    assert down.returncode == 0, down.stderr
    assert not [pid for pid in pids if _alive(pid)]
    assert not [port for port in ports if port_open("127.0.0.1", port)]
    stopped = _clickcast("stack", "status")
    assert stopped.returncode == 1 and stopped.stdout.count("stopped") == 3, stopped.stdout

    up = _clickcast("stack", "up")
    assert up.returncode == 0, up.stdout + up.stderr
    assert all(s.state == "healthy" for s in status(stack))
