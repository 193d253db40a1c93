"""A mix of Markov transitions and the user's own visit frequency: a*P(next | last) + (1-a)*share of past visits.

The mixing weight `a` is chosen on validation events.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trainer.baselines.common import PastVisits, Transitions, last_items, normalise_rows, popularity, tie_break
from trainer.baselines.tuning import best_weights, validation_batch
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress

ALPHAS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)


class MarkovFrequency:
    name = "markov_frequency"

    def __init__(self, tune_targets: int = 3000) -> None:
        self.tune_targets = tune_targets
        self.alpha = 0.5

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._transitions = Transitions.from_train(ck, split)
        self._visits = PastVisits(ck)
        self._backoff = tie_break(popularity(ck, split))
        val = validation_batch(ck, split, max_len=1, n_targets=self.tune_targets)
        if val is not None:
            mixes = [(a, 1 - a) for a in ALPHAS]
            _, (self.alpha, _), _ = best_weights(self._fixed_parts, {}, val, mixes, ck.vocab.n_items)

    def _fixed_parts(self, batch: HistoryBatch) -> Callable[[dict], Sequence[np.ndarray]]:
        parts = self._parts(batch)
        return lambda _params: parts

    def _parts(self, batch: HistoryBatch) -> tuple[np.ndarray, np.ndarray]:
        markov = self._transitions.rows(last_items(batch))
        return markov + self._backoff, normalise_rows(self._visits.counts(batch.target_index)) + self._backoff

    def score(self, batch: HistoryBatch) -> np.ndarray:
        markov, frequency = self._parts(batch)
        return self.alpha * markov + (1 - self.alpha) * frequency
