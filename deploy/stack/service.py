"""What every stack service offers: a name, start, stop, and a health probe."""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from pathlib import Path

from deploy.stack.process import ManagedProcess


class Service(ABC):
    """A service run as one managed process in `run_dir/<name>/`."""

    name: str
    start_timeout_s: float = 60.0
    # A regex for the log line that names why a start failed (shown before the log tail).
    cause_pattern: str | None = None

    def __init__(self, run_dir: Path) -> None:
        self.directory = run_dir / self.name
        self.process = ManagedProcess(self.name, self.directory)

    @property
    @abstractmethod
    def port(self) -> int:
        """The port clients use (shown by `stack status`)."""

    @abstractmethod
    def healthy(self) -> bool:
        """A cheap probe that passes only when the service answers requests."""

    @abstractmethod
    def prepare(self) -> None:
        """Fetch or build what the service needs to start (jars, environments); no process is started."""

    @abstractmethod
    def _launch(self) -> None:
        """Prepare config/data and start the process (without waiting for health)."""

    def pid(self) -> int | None:
        return self.process.pid()

    def start(self) -> float:
        """Start and wait until healthy; returns the start-up time in seconds (recorded for `status`)."""
        began = time.monotonic()
        self._launch()
        self.process.wait_healthy(self.healthy, self.start_timeout_s, cause_pattern=self.cause_pattern)
        elapsed = time.monotonic() - began
        self.startup_file.write_text(f"{elapsed:.2f}\n")
        return elapsed

    def stop(self) -> bool:
        self.startup_file.unlink(missing_ok=True)
        return self.process.stop()

    @property
    def startup_file(self) -> Path:
        return self.directory / "startup_s"

    def startup_s(self) -> float | None:
        try:
            return float(self.startup_file.read_text())
        except (OSError, ValueError):
            return None
