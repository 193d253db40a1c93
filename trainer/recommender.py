"""What every scorer (baseline or model) implements, so one evaluator ranks them all the same way."""

from __future__ import annotations

from collections.abc import Callable
from typing import Protocol, runtime_checkable

import numpy as np

from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split

# progress(message, fraction done in [0, 1])
Progress = Callable[[str, float], None]


@runtime_checkable
class Recommender(Protocol):
    name: str

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        """Learn from training events (validation events for early stopping / tuning); never test targets."""
        ...

    def score(self, batch: HistoryBatch) -> np.ndarray:
        """float32 or float64 [B, n_items]: higher = more likely next item. The evaluator ignores PAD/UNK columns."""
        ...
