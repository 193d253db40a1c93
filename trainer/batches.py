"""Fixed-length user histories: the evaluation batches (one row per target event) and the training windows.

A history holds the same user's events strictly before the target in the global time order, the newest
`max_len` of them, left-padded with PAD (oldest .. newest, newest in the last column).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from trainer.data import PAD, Checkins


@dataclass
class HistoryBatch:
    """B target events, each predicted from the user's events strictly before it."""

    items: np.ndarray  # int64 [B, L], left-padded with PAD
    ts: np.ndarray  # float64 [B, L] (0 at padding)
    lat: np.ndarray  # float32 [B, L] (0 at padding)
    lon: np.ndarray  # float32 [B, L]
    users: np.ndarray  # int64 [B]
    targets: np.ndarray  # int64 [B] (UNK: unseen item, always a miss)
    target_index: np.ndarray  # int64 [B] event index of the target in Checkins

    def __len__(self) -> int:
        return len(self.targets)

    def slice_rows(self, lo: int, hi: int) -> HistoryBatch:
        """Rows lo..hi-1 (views, not copies)."""
        return HistoryBatch(**{f.name: getattr(self, f.name)[lo:hi] for f in dataclasses.fields(self)})


@dataclass(frozen=True)
class UserIndex:
    """Events grouped by user: `order[start[u]:start[u+1]]` are user u's event indices in time order."""

    order: np.ndarray  # int64 [N] event indices sorted by (user, time)
    start: np.ndarray  # int64 [n_users + 1]
    rank: np.ndarray  # int64 [N] position of each event in `order`

    @classmethod
    def build(cls, user: np.ndarray, n_users: int) -> UserIndex:
        order = np.argsort(user, kind="stable").astype(np.int64)
        start = np.zeros(n_users + 1, dtype=np.int64)
        np.cumsum(np.bincount(user, minlength=n_users), out=start[1:])
        rank = np.empty_like(order)
        rank[order] = np.arange(len(order))
        return cls(order=order, start=start, rank=rank)


def history_indices(ck: Checkins, index: UserIndex, targets: np.ndarray, max_len: int) -> np.ndarray:
    """Event indices [B, L] of each target's history (-1 at padding)."""
    rank = index.rank[targets]
    first = index.start[ck.user[targets]]
    pos = rank[:, None] - max_len + np.arange(max_len)[None, :]
    return np.where(pos >= first[:, None], index.order[np.maximum(pos, 0)], -1)


def gather(ck: Checkins, events: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """items, ts, lat, lon at event indices (-1 -> PAD / 0)."""
    real = events >= 0
    safe = np.maximum(events, 0)
    items = np.where(real, ck.item[safe], PAD).astype(np.int64)
    ts = np.where(real, ck.ts[safe], 0.0)
    lat = np.where(real, ck.lat[safe], 0.0).astype(np.float32)
    lon = np.where(real, ck.lon[safe], 0.0).astype(np.float32)
    return items, ts, lat, lon


def make_batch(ck: Checkins, index: UserIndex, targets: np.ndarray, max_len: int) -> HistoryBatch:
    targets = np.asarray(targets, dtype=np.int64)
    items, ts, lat, lon = gather(ck, history_indices(ck, index, targets, max_len))
    return HistoryBatch(
        items=items,
        ts=ts,
        lat=lat,
        lon=lon,
        users=ck.user[targets],
        targets=ck.item[targets],
        target_index=targets,
    )


def history_batches(
    ck: Checkins, mask: np.ndarray, max_len: int, batch_size: int, index: UserIndex | None = None
) -> Iterator[HistoryBatch]:
    """One row per event in `mask` (in time order), its history from all earlier events of its user."""
    index = index or UserIndex.build(ck.user, ck.n_users)
    targets = np.flatnonzero(mask)
    for lo in range(0, len(targets), batch_size):
        yield make_batch(ck, index, targets[lo : lo + batch_size], max_len)


@dataclass(frozen=True)
class TrainingWindows:
    """Per-user windows of consecutive masked events, left-padded to L (for next-item / masked-item training).

    Consecutive windows of a user overlap by `max_len - stride` events, so with the default stride of
    `max_len - 1` every consecutive pair (event, next event) appears inside some window.
    """

    items: np.ndarray  # int64 [N, L]
    ts: np.ndarray  # float64 [N, L]
    lat: np.ndarray  # float32 [N, L]
    lon: np.ndarray  # float32 [N, L]
    users: np.ndarray  # int64 [N]
    event_index: np.ndarray  # int64 [N, L] event index in Checkins (-1 at padding)

    def __len__(self) -> int:
        return len(self.users)


def training_sequences(ck: Checkins, mask: np.ndarray, max_len: int, stride: int | None = None) -> TrainingWindows:
    """Windows over each user's events in `mask` only (e.g. the training split), newest window ending at the
    user's last masked event; users with a single masked event give no window (no pair to learn from)."""
    stride = stride or max(max_len - 1, 1)
    events = np.flatnonzero(mask)
    users = ck.user[events]
    by_user = events[np.argsort(users, kind="stable")]
    counts = np.bincount(users, minlength=ck.n_users)
    starts = np.concatenate([[0], np.cumsum(counts)])
    rows, row_users = [], []
    for u in np.flatnonzero(counts >= 2):
        seq = by_user[starts[u] : starts[u + 1]]
        for end in range(len(seq), 1, -stride):
            window = seq[max(0, end - max_len) : end]
            rows.append(np.concatenate([np.full(max_len - len(window), -1, dtype=np.int64), window]))
            row_users.append(u)
            if end <= max_len:
                break
    event_index = np.stack(rows) if rows else np.empty((0, max_len), dtype=np.int64)
    items, ts, lat, lon = gather(ck, event_index)
    return TrainingWindows(
        items=items, ts=ts, lat=lat, lon=lon, users=np.asarray(row_users, dtype=np.int64), event_index=event_index
    )
