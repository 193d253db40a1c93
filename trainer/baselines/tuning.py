"""Choosing a heuristic's few weights on validation targets (never test), by validation MRR."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from trainer.batches import HistoryBatch, UserIndex, make_batch
from trainer.data import UNK, Checkins, Split
from trainer.metrics import metrics_from_ranks, target_ranks


def validation_batch(ck: Checkins, split: Split, max_len: int, n_targets: int, seed: int = 0) -> HistoryBatch | None:
    """A seeded sample of validation events with a known target item (UNK targets carry no signal); None when
    there is none (a small file): the heuristic then keeps its default weights."""
    candidates = np.flatnonzero(split.val & (ck.item > UNK))
    if len(candidates) == 0:
        return None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, size=min(n_targets, len(candidates)), replace=False))
    return make_batch(ck, UserIndex.build(ck.user, ck.n_users), chosen, max_len)


def best_weights(
    components: Callable[[dict], Sequence[np.ndarray]],
    grid: dict[str, Iterable],
    targets: np.ndarray,
    mix_grid: Sequence[Sequence[float]],
) -> tuple[dict, tuple[float, ...], float]:
    """Search `grid` (parameters the components depend on) x `mix_grid` (weights of a linear mix of them).

    `components(params)` gives the score matrices to mix; returns (params, mix weights, validation MRR).
    """
    best: tuple[dict, tuple[float, ...], float] = ({}, (), -1.0)
    keys = list(grid)
    for values in itertools.product(*(grid[k] for k in keys)):
        params = dict(zip(keys, values, strict=True))
        parts = components(params)
        for mix in mix_grid:
            scores = sum(w * p for w, p in zip(mix, parts, strict=True))
            mrr = metrics_from_ranks(target_ranks(scores, targets))["mrr"]
            if mrr > best[2]:
                best = (params, tuple(mix), mrr)
    return best
