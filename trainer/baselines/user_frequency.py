"""The user's own visit frequency: the places this user went to most, counting every event before the target.

The batch history is truncated to `max_len`, so counts come from all of the user's earlier events (train, val and
test alike: the stream has seen them too). Unvisited items fall back to popularity order.
"""

from __future__ import annotations

import numpy as np

from trainer.baselines.common import PastVisits, normalise_rows, popularity, tie_break
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress


class UserFrequency:
    name = "user_frequency"

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._visits = PastVisits(ck)
        self._backoff = tie_break(popularity(ck, split))

    def score(self, batch: HistoryBatch) -> np.ndarray:
        counts = normalise_rows(self._visits.counts(batch.target_index))
        return counts + self._backoff
