"""First-order Markov chain: P(next item | last item), estimated from consecutive training events of each user.

A last item without training transitions (or a cold user) falls back to popularity order.
"""

from __future__ import annotations

import numpy as np

from trainer.baselines.common import Transitions, last_items, popularity, tie_break
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress


class Markov:
    name = "markov"

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._transitions = Transitions.from_train(ck, split)
        self._backoff = tie_break(popularity(ck, split))

    def score(self, batch: HistoryBatch) -> np.ndarray:
        return self._transitions.rows(last_items(batch)) + self._backoff
