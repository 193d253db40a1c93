"""Choosing a heuristic's few weights on validation targets (never test), by validation MRR."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable, Sequence

import numpy as np

from trainer.batches import HistoryBatch, UserIndex, make_batch
from trainer.data import UNK, Checkins, Split
from trainer.metrics import RankAccumulator


def validation_batch(ck: Checkins, split: Split, max_len: int, n_targets: int, seed: int = 0) -> HistoryBatch | None:
    """A seeded sample of validation events with a known target item (UNK targets carry no signal); None when
    there is none (a small file): the heuristic then keeps its default weights."""
    candidates = np.flatnonzero(split.val & (ck.item > UNK))
    if len(candidates) == 0:
        return None
    rng = np.random.default_rng(seed)
    chosen = np.sort(rng.choice(candidates, size=min(n_targets, len(candidates)), replace=False))
    return make_batch(ck, UserIndex.build(ck.user, ck.n_users), chosen, max_len)


# Score matrices of one chunk of validation rows stay within this many bytes each (float64 [rows, n_items]): the
# whole sample at once would take 3,000 x 50,000 x 8 bytes = 1.2 GB a matrix, and a heuristic mixes several.
CHUNK_BYTES = 64 * 2**20
SCORE_BYTES = np.dtype(np.float64).itemsize


def chunk_rows(n_items: int, budget_bytes: int) -> int:
    """Rows of a chunk whose [rows, n_items] float64 score matrix fits `budget_bytes` (at least one row)."""
    return max(1, budget_bytes // (SCORE_BYTES * max(n_items, 1)))


def best_weights(
    parts_of: Callable[[HistoryBatch], Callable[[dict], Sequence[np.ndarray]]],
    grid: dict[str, Iterable],
    batch: HistoryBatch,
    mix_grid: Sequence[Sequence[float]],
    n_items: int,
    budget_bytes: int | None = None,
) -> tuple[dict, tuple[float, ...], float]:
    """Search `grid` (parameters the components depend on) x `mix_grid` (weights of a linear mix of them) by
    validation MRR over `batch`; returns (params, mix weights, MRR).

    `parts_of(rows)` prepares a chunk of the batch's rows (what does not depend on the parameters) and returns a
    function of the parameters giving the score matrices [rows, n_items] to mix. Chunks keep each matrix within
    `budget_bytes` (default CHUNK_BYTES); ranks are gathered over every chunk, so the chunk size cannot change the
    result.
    """
    if len(batch) == 0:
        raise ValueError("no validation rows to tune on")
    keys = list(grid)
    settings = [dict(zip(keys, values, strict=True)) for values in itertools.product(*(grid[k] for k in keys))]
    ranks = [[RankAccumulator() for _ in mix_grid] for _ in settings]
    step = chunk_rows(n_items, CHUNK_BYTES if budget_bytes is None else budget_bytes)
    for lo in range(0, len(batch), step):
        chunk = batch.slice_rows(lo, lo + step)
        components = parts_of(chunk)
        for s, params in enumerate(settings):
            parts = components(params)
            for m, mix in enumerate(mix_grid):
                ranks[s][m].add(sum(w * p for w, p in zip(mix, parts, strict=True)), chunk.targets)
    best: tuple[dict, tuple[float, ...], float] = ({}, (), -1.0)
    for s, params in enumerate(settings):
        for m, mix in enumerate(mix_grid):
            mrr = ranks[s][m].result()["mrr"]
            if mrr > best[2]:
                best = (params, tuple(mix), mrr)
    return best
