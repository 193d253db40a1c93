"""Most-popular: the same ranking for everyone, by training visit counts."""

from __future__ import annotations

import numpy as np

from trainer.baselines.common import popularity
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress


class MostPopular:
    name = "most_popular"

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._scores = popularity(ck, split).astype(np.float32)

    def score(self, batch: HistoryBatch) -> np.ndarray:
        return np.tile(self._scores, (len(batch), 1))
