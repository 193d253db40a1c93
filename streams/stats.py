"""Running counters of a worker, logged periodically (the seam for Prometheus metrics later)."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

from streams.processor import BatchResult


@dataclass
class WorkerStats:
    predictions: int = 0
    dead_letters: int = 0
    duplicates: int = 0
    late: int = 0
    batches: int = 0
    _since: float = field(default_factory=time.monotonic)

    def record(self, result: BatchResult) -> None:
        self.batches += 1
        self.predictions += len(result.predictions)
        self.dead_letters += len(result.dead_letters)
        self.duplicates += result.duplicates
        self.late += result.late

    def log_and_reset(self, log: logging.Logger) -> None:
        elapsed = time.monotonic() - self._since
        if self.batches:
            log.info(
                "last %.0fs: %d predictions (%.0f/s), %d dead letters, %d duplicates, %d too late, %d batches",
                elapsed,
                self.predictions,
                self.predictions / elapsed,
                self.dead_letters,
                self.duplicates,
                self.late,
                self.batches,
            )
        self.predictions = self.dead_letters = self.duplicates = self.late = self.batches = 0
        self._since = time.monotonic()
