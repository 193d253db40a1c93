"""Starting workers: whatever an interrupted run left running goes first."""

import sys

from deploy.stack.process import ManagedProcess
from streams.workers import stop_leftover_workers


def test_every_leftover_worker_is_stopped_however_many_the_last_run_started(tmp_path):
    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    leftovers = [ManagedProcess(name, tmp_path) for name in ("worker-0", "worker-3")]
    other = ManagedProcess("relay", tmp_path)  # not a worker: left alone
    for proc in [*leftovers, other]:
        proc.start(sleep)
    try:
        stop_leftover_workers(tmp_path)
        assert [proc.pid() for proc in leftovers] == [None, None]
        assert other.pid() is not None
    finally:
        other.stop(grace_s=1.0)
