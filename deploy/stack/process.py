"""A detached service process: pid file, log file, health wait, and a stop that leaves no child behind.

The process is started in its own session (so it outlives the `clickcast` command that started it and
its process group id equals its pid); stopping signals the whole group, because Triton's python-backend
stubs and any helper a service forks must go too.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

LOG_TAIL_LINES = 20
MAX_CAUSE_CHARS = 600
START_MARKER = "\n=== "  # written to the log before each start


class ServiceError(RuntimeError):
    """A service failed to start or stop; the message says why and where its log is."""


def _proc_start_ticks(pid: int) -> int | None:
    """The kernel's start time of `pid` (clock ticks since boot), None if it is gone or a zombie.

    Stored next to the pid so a recycled pid is not mistaken for our service.
    """
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2 (comm) may hold spaces and parentheses; everything after the last ')' is fixed-format.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def _reap(pid: int) -> None:
    """Collect the exit status if `pid` is our own child (started by this Python process)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def group_alive(pgid: int) -> bool:
    """True while any non-zombie process is left in process group `pgid`."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            return True
    return False


def first_match(path: Path, pattern: str) -> str | None:
    """The first line matching `pattern` since the log's last start marker."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return None
    latest_run = text.rsplit(START_MARKER, 1)[-1].splitlines()[1:]  # skip the marker's own line
    regex = re.compile(pattern)
    return next((line.strip() for line in latest_run if regex.search(line)), None)


def tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"


@dataclass(frozen=True)
class ManagedProcess:
    """One long-running process whose pid file and log live in `directory`."""

    name: str
    directory: Path

    @property
    def pid_file(self) -> Path:
        return self.directory / f"{self.name}.pid"

    @property
    def log_file(self) -> Path:
        return self.directory / f"{self.name}.log"

    def _recorded(self) -> tuple[int, int] | None:
        """(pid, start ticks) from the pid file, if it holds them."""
        try:
            pid_text, ticks_text = self.pid_file.read_text().split()
            pid, ticks = int(pid_text), int(ticks_text)
        except (OSError, ValueError):
            return None
        return (pid, ticks) if pid > 1 else None  # 0 would signal our own group, 1 is init

    def pid(self) -> int | None:
        """The pid of the running process, or None (no pid file, process gone, or pid reused)."""
        recorded = self._recorded()
        if recorded is None:
            return None
        pid, ticks = recorded
        _reap(pid)
        return pid if _proc_start_ticks(pid) == ticks else None

    def start(self, argv: Sequence[str], env: Mapping[str, str] | None = None, cwd: Path | None = None) -> int:
        """Start `argv` detached, appending its stdout and stderr to the log file; returns the pid."""
        if self.pid() is not None:
            raise ServiceError(f"{self.name} is already running (pid file {self.pid_file})")
        self.directory.mkdir(parents=True, exist_ok=True)
        with self.log_file.open("ab") as log:
            log.write(f"{START_MARKER}{time.strftime('%Y-%m-%d %H:%M:%S')} starting: {' '.join(argv)}\n".encode())
            log.flush()
            proc = subprocess.Popen(
                list(argv),
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                env=dict(env) if env is not None else None,
                cwd=cwd,
                start_new_session=True,
            )
        ticks = _proc_start_ticks(proc.pid)
        self.pid_file.write_text(f"{proc.pid} {ticks}\n")
        return proc.pid

    def wait_healthy(
        self,
        probe: Callable[[], bool],
        timeout_s: float,
        interval_s: float = 0.25,
        cause_pattern: str | None = None,
    ) -> None:
        """Poll `probe` until it passes; raise with the log tail if the process dies or time runs out.

        `cause_pattern` (a regex) picks the log line that names the cause, which may lie above the tail.
        """
        deadline = time.monotonic() + timeout_s
        while True:
            if self.pid() is None:
                raise ServiceError(self._failure("exited during start-up", cause_pattern))
            if probe():
                return
            if time.monotonic() > deadline:
                raise ServiceError(self._failure(f"not healthy after {timeout_s:.0f} s", cause_pattern))
            time.sleep(interval_s)

    def stop(self, grace_s: float = 10.0) -> bool:
        """SIGTERM the process group, SIGKILL whatever is left after `grace_s`; True if anything ran.

        The group is signalled even when its leader is gone, so children orphaned by a crashed
        service (Triton's python-backend stubs) go too.
        """
        recorded = self._recorded()
        if recorded is None:
            return False
        # start_new_session made the service a group leader: its pgid is its pid.
        pgid, ticks = recorded
        _reap(pgid)
        leader_ticks = _proc_start_ticks(pgid)
        # A live leader with another start time is an unrelated process that reuses the pid. A dead
        # leader's pid cannot be reused while its group has members, so live members are ours.
        ours = leader_ticks == ticks or (leader_ticks is None and group_alive(pgid))
        if not ours:
            self.pid_file.unlink(missing_ok=True)
            return False
        self._signal_group(pgid, signal.SIGTERM)
        if not self._wait_group_gone(pgid, grace_s):
            self._signal_group(pgid, signal.SIGKILL)
            if not self._wait_group_gone(pgid, 5.0):
                raise ServiceError(f"{self.name}: process group {pgid} survived SIGKILL")
        self.pid_file.unlink(missing_ok=True)
        return True

    @staticmethod
    def _wait_group_gone(pgid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            _reap(pgid)
            if not group_alive(pgid):
                return True
            time.sleep(0.05)
        return False

    @staticmethod
    def _signal_group(pgid: int, sig: signal.Signals) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)

    def _failure(self, what: str, cause_pattern: str | None) -> str:
        cause = first_match(self.log_file, cause_pattern) if cause_pattern else None
        because = f": {cause[:MAX_CAUSE_CHARS]}" if cause else ""
        return f"{self.name} {what}{because}\nlast lines of {self.log_file}:\n{tail(self.log_file)}"
