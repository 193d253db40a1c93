"""A hand-made spatio-temporal heuristic:

    score(i) = share of the user's past visits to i, each weighted by recency exp(-age/tau) and by closeness in
               hour of day to now (Gaussian over the circular hour difference, width sigma)
             + w_markov * P(i | last item)
             + w_distance * exp(-km(last position, i) / d0)

"Now" is the time of the user's newest event (the stream predicts when an event arrives). tau, sigma, d0 and the
two weights are chosen on validation events by MRR.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from trainer.baselines.common import (
    PastVisits,
    Transitions,
    distances_km,
    has_history,
    hour_of_day,
    last_items,
    normalise_rows,
    popularity,
    tie_break,
)
from trainer.baselines.tuning import best_weights, validation_batch
from trainer.batches import HistoryBatch
from trainer.data import Checkins, Split
from trainer.recommender import Progress

DAY_S = 86400.0
GRID = {
    "tau_days": (7.0, 30.0, 180.0),
    "sigma_hours": (3.0, 1e6),  # 1e6: no hour-of-day weighting
    "d0_km": (0.5, 2.0),
}
MIXES = [(1.0, wm, wd) for wm in (0.0, 0.25, 0.5, 1.0) for wd in (0.0, 0.02, 0.1)]


class SpatioTemporalHeuristic:
    name = "spatio_temporal"

    def __init__(self, tune_targets: int = 2000) -> None:
        self.tune_targets = tune_targets
        self.params = {"tau_days": 30.0, "sigma_hours": 4.0, "d0_km": 1.0}
        self.weights = (1.0, 0.25, 0.03)

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        self._ck = ck
        self._transitions = Transitions.from_train(ck, split)
        self._visits = PastVisits(ck)
        self._backoff = tie_break(popularity(ck, split))
        val = validation_batch(ck, split, max_len=1, n_targets=self.tune_targets)
        if val is not None:
            self.params, self.weights, _ = best_weights(self._tuning_parts, GRID, val, MIXES, ck.vocab.n_items)

    def _tuning_parts(self, batch: HistoryBatch) -> Callable[[dict], Sequence[np.ndarray]]:
        """The three terms of `batch` as a function of the parameters; Markov and distances do not depend on them.
        The visits' weight is 1 in every mix, so the popularity tie-break rides on their term: the settings are chosen
        on the scores `score` gives, ties broken alike."""
        markov = self._markov(batch)
        km = self._km(batch)
        return lambda p: (self._visit_term(batch, p) + self._backoff, markov, self._distance_term(km, p))

    def _visit_term(self, batch: HistoryBatch, params: dict) -> np.ndarray:
        rows, events = self._visits.pairs(batch.target_index)
        now = batch.ts[:, -1][rows]
        age = np.maximum(now - self._ck.ts[events], 0.0)
        hour_gap = np.abs(hour_of_day(now) - hour_of_day(self._ck.ts[events]))
        hour_gap = np.minimum(hour_gap, 24 - hour_gap)
        weights = np.exp(-age / (params["tau_days"] * DAY_S) - 0.5 * (hour_gap / params["sigma_hours"]) ** 2)
        return normalise_rows(self._visits.counts(batch.target_index, weights)).astype(np.float32)

    def _markov(self, batch: HistoryBatch) -> np.ndarray:
        return self._transitions.rows(last_items(batch)).astype(np.float32)

    def _km(self, batch: HistoryBatch) -> np.ndarray:
        """Distances from the last position; inf for cold users, so their distance term is 0."""
        km = distances_km(self._ck, batch.lat[:, -1], batch.lon[:, -1]).astype(np.float32)
        km[~has_history(batch)] = np.inf
        return km

    @staticmethod
    def _distance_term(km: np.ndarray, params: dict) -> np.ndarray:
        return np.exp(-km / np.float32(params["d0_km"]))

    def score(self, batch: HistoryBatch) -> np.ndarray:
        w_visits, w_markov, w_distance = self.weights
        scores = (
            w_visits * self._visit_term(batch, self.params)
            + w_markov * self._markov(batch)
            + w_distance * self._distance_term(self._km(batch), self.params)
        )
        return scores + self._backoff
