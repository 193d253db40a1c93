"""Statistics the baselines share: popularity, train transitions, a user's past visits, distances to items.

Everything is vectorised over a batch: a batch of 256 targets over ~5k items is a few dense [B, n_items] arrays.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from features.geo import haversine_km
from features.sequence import hour_of_week
from trainer.batches import HistoryBatch, UserIndex
from trainer.data import N_SPECIAL, PAD, Checkins, Split

# Added to every baseline's scores so items the main signal leaves tied are ordered by popularity
# (a backoff, not a signal: at most this much of a score unit). The scores stay float64: near 0.5, float32's step
# (6e-8) would swallow popularity differences under ~6% of the top count and leave those items tied.
TIE_BREAK = 1e-6


def popularity(ck: Checkins, split: Split) -> np.ndarray:
    """float64 [n_items]: training visit counts (0 for PAD/UNK)."""
    counts = np.bincount(ck.item[split.train], minlength=ck.vocab.n_items).astype(np.float64)
    counts[:N_SPECIAL] = 0.0
    return counts


def tie_break(pop: np.ndarray) -> np.ndarray:
    """Popularity scaled into [0, TIE_BREAK)."""
    return TIE_BREAK * pop / (pop.max() + 1.0)


@dataclass(frozen=True)
class Transitions:
    """Row-normalised first-order transition probabilities, stored sparse (CSR arrays)."""

    indptr: np.ndarray  # int64 [n_items + 1]
    indices: np.ndarray  # int64 [nnz] next item
    probs: np.ndarray  # float64 [nnz]
    n_items: int

    @classmethod
    def from_train(cls, ck: Checkins, split: Split) -> Transitions:
        """Counts of (item, next item of the same user) over consecutive training events of each user."""
        events = np.flatnonzero(split.train)
        by_user = events[np.argsort(ck.user[events], kind="stable")]
        same_user = ck.user[by_user[:-1]] == ck.user[by_user[1:]]
        src = ck.item[by_user[:-1]][same_user]
        dst = ck.item[by_user[1:]][same_user]
        n = ck.vocab.n_items
        pairs, counts = np.unique(src * n + dst, return_counts=True)
        src, dst = pairs // n, pairs % n
        row_total = np.bincount(src, weights=counts, minlength=n)
        indptr = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(np.bincount(src, minlength=n), out=indptr[1:])
        return cls(indptr=indptr, indices=dst.astype(np.int64), probs=counts / row_total[src], n_items=n)

    def rows(self, items: np.ndarray) -> np.ndarray:
        """float64 [B, n_items]: P(next | item) for each item (all zero for items with no outgoing transition)."""
        items = np.asarray(items, dtype=np.int64)
        out = np.zeros((len(items), self.n_items))
        lo, hi = self.indptr[items], self.indptr[items + 1]
        lengths = hi - lo
        rows = np.repeat(np.arange(len(items)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        entries = np.repeat(lo, lengths) + offsets
        out[rows, self.indices[entries]] = self.probs[entries]
        return out


def last_items(batch: HistoryBatch) -> np.ndarray:
    """The newest history item per row (PAD for cold users)."""
    return batch.items[:, -1]


class PastVisits:
    """For each target, all of its user's earlier events (every split: the stream sees them too), not just the
    `max_len` in the batch. Built from the events' global order, so the target and later events never leak."""

    def __init__(self, ck: Checkins) -> None:
        self.ck = ck
        self.index = UserIndex.build(ck.user, ck.n_users)

    def pairs(self, target_index: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(row, event) pairs: row r of the batch and one event index of its user before the target."""
        first = self.index.start[self.ck.user[target_index]]
        stop = self.index.rank[target_index]
        lengths = stop - first
        rows = np.repeat(np.arange(len(target_index)), lengths)
        offsets = np.arange(lengths.sum()) - np.repeat(np.cumsum(lengths) - lengths, lengths)
        return rows, self.index.order[np.repeat(first, lengths) + offsets]

    def counts(self, target_index: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """float64 [B, n_items]: (weighted) visits per item before each target; `weights` align with `pairs`."""
        rows, events = self.pairs(target_index)
        n = self.ck.vocab.n_items
        flat = np.bincount(rows * n + self.ck.item[events], weights=weights, minlength=len(target_index) * n)
        out = flat.reshape(len(target_index), n).astype(np.float64)
        out[:, :N_SPECIAL] = 0.0
        return out


def normalise_rows(x: np.ndarray) -> np.ndarray:
    """Rows scaled to sum 1 (all-zero rows stay zero)."""
    total = x.sum(axis=1, keepdims=True)
    return np.divide(x, total, out=np.zeros_like(x), where=total > 0)


def distances_km(ck: Checkins, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
    """float64 [B, n_items]: great-circle distance from each position to each item's mean position."""
    return np.asarray(haversine_km(lat[:, None], lon[:, None], ck.vocab.lat[None, :], ck.vocab.lon[None, :]))


def has_history(batch: HistoryBatch) -> np.ndarray:
    return batch.items[:, -1] != PAD


def hour_of_day(ts: np.ndarray) -> np.ndarray:
    """UTC hour 0..23 (the same hour encoder the model and the stream use)."""
    return hour_of_week(ts) % 24
