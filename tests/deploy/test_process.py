"""The managed-process helper: detached start, pid file, health wait, and a stop that kills the whole group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

from deploy.stack.process import ManagedProcess, ServiceError, group_alive

# A parent that forks a child which ignores SIGTERM, then both sleep: stop() must still leave nothing.
STUBBORN_FAMILY = (
    "import os, signal, time\n"
    "if os.fork() == 0:\n"
    "    signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
    "    print('child', 'ignores SIGTERM', flush=True)\n"  # not the awaited text itself: the log holds the command
    "    time.sleep(60)\n"
    "else:\n"
    "    time.sleep(60)\n"
)


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def test_start_writes_pid_and_log_and_runs_in_its_own_session(tmp_path):
    proc = ManagedProcess("sleeper", tmp_path)
    pid = proc.start([sys.executable, "-c", "print('hello', flush=True); import time; time.sleep(30)"])
    try:
        assert proc.pid() == pid
        assert os.getpgid(pid) == pid  # its own group: stop() can signal the group
        proc.wait_healthy(lambda: "hello" in proc.log_file.read_text(), timeout_s=10)
    finally:
        assert proc.stop(grace_s=5)
    assert proc.pid() is None
    assert not proc.pid_file.exists()
    assert not _alive(pid)


def test_start_refuses_a_second_instance(tmp_path):
    proc = ManagedProcess("sleeper", tmp_path)
    proc.start([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ServiceError, match="already running"):
            proc.start([sys.executable, "-c", "pass"])
    finally:
        proc.stop(grace_s=5)


def test_stop_kills_children_that_ignore_sigterm(tmp_path):
    proc = ManagedProcess("family", tmp_path)
    pid = proc.start([sys.executable, "-c", STUBBORN_FAMILY])
    proc.wait_healthy(lambda: "child ignores SIGTERM" in proc.log_file.read_text(), timeout_s=10)
    began = time.monotonic()
    assert proc.stop(grace_s=1.0)
    assert time.monotonic() - began >= 1.0  # it needed the SIGKILL after the grace period
    assert not group_alive(pid)


def test_wait_healthy_reports_an_early_exit_with_the_log_tail(tmp_path):
    proc = ManagedProcess("crasher", tmp_path)
    proc.start([sys.executable, "-c", "import sys; print('port already in use', flush=True); sys.exit(3)"])
    with pytest.raises(ServiceError, match=r"exited during start-up(.|\n)*port already in use"):
        proc.wait_healthy(lambda: False, timeout_s=10)


def test_wait_healthy_times_out_with_the_log_path(tmp_path):
    proc = ManagedProcess("slow", tmp_path)
    proc.start([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        with pytest.raises(ServiceError, match=r"not healthy after 1 s\nlast lines of .*slow\.log"):
            proc.wait_healthy(lambda: False, timeout_s=1, interval_s=0.1)
    finally:
        proc.stop(grace_s=5)


def test_a_stale_or_recycled_pid_file_means_not_running(tmp_path):
    proc = ManagedProcess("ghost", tmp_path)
    proc.pid_file.write_text(f"{os.getpid()} 1\n")  # our own live pid, but a different start time
    assert proc.pid() is None
    assert not proc.stop()  # and stop() must not signal the process that now owns the pid
    assert not proc.pid_file.exists()


def test_stop_when_never_started_is_harmless(tmp_path):
    assert not ManagedProcess("nothing", tmp_path).stop()


def test_stop_kills_children_orphaned_by_a_dead_leader(tmp_path):
    proc = ManagedProcess("orphans", tmp_path)
    script = "import os, time\nif os.fork() == 0:\n    time.sleep(30)\nelse:\n    print('forked', flush=True)\n"
    pid = proc.start([sys.executable, "-c", script])
    proc.wait_healthy(lambda: "forked" in proc.log_file.read_text(), timeout_s=10)
    deadline = time.monotonic() + 10
    while proc.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert proc.pid() is None  # the leader exited...
    assert group_alive(pid)  # ...and its child still runs in the group
    assert proc.stop(grace_s=5)
    assert not group_alive(pid)


def test_the_cause_line_is_shown_even_when_it_is_above_the_tail(tmp_path):
    proc = ManagedProcess("verbose", tmp_path)
    proc.log_file.write_text("ERROR from an earlier run\n")
    script = "print('E0 failed to load model: bad weights'); print('\\n'.join(['noise'] * 50)); raise SystemExit(1)"
    proc.start([sys.executable, "-c", script])
    with pytest.raises(ServiceError) as failure:
        proc.wait_healthy(lambda: False, timeout_s=10, cause_pattern=r"failed to load|ERROR")
    first_line = str(failure.value).splitlines()[0]
    assert first_line == "verbose exited during start-up: E0 failed to load model: bad weights"


def test_stack_down_also_stops_clients_an_interrupted_run_left(tmp_path):
    from deploy.stack.stack import down
    from streams.settings import Settings

    demo = ManagedProcess("worker-0", tmp_path / "workers")
    bench = ManagedProcess("worker-0", tmp_path / "bench" / "workers")  # a benchmark's own worker group
    pids = [p.start([sys.executable, "-c", "import time; time.sleep(60)"]) for p in (demo, bench)]
    stale = tmp_path / "bench" / "relay-naive.pid"
    stale.write_text(f"{pids[0]} 1\n")  # a pid that now belongs to another process start: never signalled
    said: list[str] = []
    down(Settings(run_dir=tmp_path), report=said.append)
    assert not any(_alive(pid) for pid in pids) and demo.pid() is None and bench.pid() is None
    assert not stale.exists()
    assert [line.split(":")[0] for line in said] == ["worker-0", "worker-0", "triton", "redis", "kafka"]
