"""Scoring any Recommender on a split with full ranking over all known items."""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from trainer.batches import HistoryBatch, UserIndex, history_batches
from trainer.data import Checkins, Split
from trainer.metrics import RankAccumulator
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


def evaluate(
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
) -> dict[str, float]:
    """Metrics over every event of the split (UNK targets and cold users included; only the first `limit` in
    time if given), plus the event count and scoring time. `transform` alters each batch before scoring (e.g.
    the robustness test's noise)."""
    mask = split_mask(split, which)
    if limit is not None:
        mask = mask & (np.cumsum(mask) <= limit)
    max_len = max_len or history_length(recommender)
    n_events = int(mask.sum())
    ranks = RankAccumulator()
    started = time.perf_counter()
    done = 0
    for batch in history_batches(ck, mask, max_len, batch_size, index):
        if transform is not None:
            batch = transform(batch)
        ranks.add(recommender.score(batch), batch.targets)
        done += len(batch)
        if progress:
            progress(f"{recommender.name}: scoring {which}", done / max(n_events, 1))
    result: dict[str, float] = ranks.result()
    result["events"] = n_events
    result["score_seconds"] = time.perf_counter() - started
    return result
