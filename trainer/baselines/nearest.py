"""Nearest-distance: the places closest to the user's last position (popularity order for cold users)."""

from __future__ import annotations

import numpy as np

from trainer.baselines.common import distances_km, has_history, popularity, tie_break
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress


class NearestDistance:
    name = "nearest_distance"

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._ck = ck
        self._backoff = tie_break(popularity(ck, split))

    def score(self, batch: HistoryBatch) -> np.ndarray:
        # 1/(1+d) keeps every score in (0, 1], so the popularity backoff only orders equal distances.
        near = 1.0 / (1.0 + distances_km(self._ck, batch.lat[:, -1], batch.lon[:, -1]))
        near[~has_history(batch)] = 0.0
        return near + self._backoff
