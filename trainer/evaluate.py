"""Scoring any Recommender on a split with full ranking over all known items."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from trainer.batches import HistoryBatch, UserIndex, history_batches
from trainer.data import Checkins, Split
from trainer.metrics import RankAccumulator, metrics_from_ranks
from trainer.recommender import Progress, Recommender

DEFAULT_MAX_LEN = 50


def split_mask(split: Split, which: str) -> np.ndarray:
    if which not in ("train", "val", "test"):
        raise ValueError(f"unknown split '{which}' (train, val or test)")
    return getattr(split, which)


def history_length(recommender: Recommender) -> int:
    """The history length a model was trained with (its config's max_len), else the default."""
    config = getattr(recommender, "config", None)
    return int(getattr(config, "max_len", DEFAULT_MAX_LEN))


@dataclass(frozen=True)
class EventRanks:
    """Every scored event's target rank (1-based, inf for a miss) and user, in scoring order."""

    ranks: np.ndarray  # float64 [N]
    users: np.ndarray  # int64 [N]
    seconds: float  # time spent scoring

    def metrics(self) -> dict[str, float]:
        result: dict[str, float] = metrics_from_ranks(self.ranks)
        result["events"] = len(self.ranks)
        result["score_seconds"] = self.seconds
        return result


def rank_events(
    recommender: Recommender,
    ck: Checkins,
    split: Split,
    which: str = "test",
    max_len: int | None = None,
    batch_size: int = 256,
    transform: Callable[[HistoryBatch], HistoryBatch] | None = None,
    progress: Progress | None = None,
    index: UserIndex | None = None,
    limit: int | None = None,
) -> EventRanks:
    """The target rank of every event of the split (UNK targets and cold users included; only the first `limit`
    in time if given). `transform` alters each batch before scoring (e.g. the robustness test's noise)."""
    mask = split_mask(split, which)
    if limit is not None:
        mask = mask & (np.cumsum(mask) <= limit)
    max_len = max_len or history_length(recommender)
    n_events = int(mask.sum())
    ranks = RankAccumulator()
    users: list[np.ndarray] = []
    started = time.perf_counter()
    done = 0
    for batch in history_batches(ck, mask, max_len, batch_size, index):
        if transform is not None:
            batch = transform(batch)
        ranks.add(recommender.score(batch), batch.targets)
        users.append(batch.users)
        done += len(batch)
        if progress:
            progress(f"{recommender.name}: scoring {which}", done / max(n_events, 1))
    all_users = np.concatenate(users) if users else np.empty(0, dtype=np.int64)
    return EventRanks(ranks=ranks.ranks, users=all_users, seconds=time.perf_counter() - started)
