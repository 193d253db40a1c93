"""Full-ranking next-item metrics: every known item is a candidate, no sampled negatives.

Ties are broken pessimistically (the target ranks after every other item with an equal score), so a constant
or degenerate scorer cannot look good. A target that is PAD or UNK (item unseen in training) is a miss.
"""

from __future__ import annotations

import numpy as np

from trainer.data import N_SPECIAL, UNK

METRICS = ("acc@1", "acc@5", "acc@10", "ndcg@10", "mrr")


def target_ranks(scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """1-based rank of each target among the known items (columns >= N_SPECIAL); inf for PAD/UNK targets.

    rank = 1 + #items scored higher + #other items scored equal. Pessimistic about NaN: another item's NaN score
    ranks above the target, and a NaN target score ranks last, so a scorer that breaks cannot look better.
    """
    scores = np.asarray(scores)
    targets = np.asarray(targets, dtype=np.int64)
    known = scores[:, N_SPECIAL:]
    hit = targets > UNK
    own = scores[np.arange(len(targets)), np.where(hit, targets, N_SPECIAL)][:, None]
    not_below = np.count_nonzero((known >= own) | np.isnan(known), axis=1)  # includes the target itself
    not_below = np.where(np.isnan(own[:, 0]), known.shape[1], not_below)
    return np.where(hit, not_below.astype(np.float64), np.inf)


def event_values(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric's value for every event (its mean over events is the metric), from 1-based target ranks."""
    ranks = np.asarray(ranks, dtype=np.float64)
    top10 = ranks <= 10
    return {
        "acc@1": (ranks <= 1).astype(np.float64),
        "acc@5": (ranks <= 5).astype(np.float64),
        "acc@10": top10.astype(np.float64),
        "ndcg@10": np.where(top10, 1.0 / np.log2(np.where(top10, ranks, 1.0) + 1.0), 0.0),
        "mrr": 1.0 / ranks,  # 1/inf = 0 for misses
    }


def metrics_from_ranks(ranks: np.ndarray) -> dict[str, float]:
    if len(ranks) == 0:
        return dict.fromkeys(METRICS, 0.0)
    return {m: float(np.mean(values)) for m, values in event_values(ranks).items()}


class RankAccumulator:
    """Collects target ranks over batches; `result()` gives the metrics over all of them."""

    def __init__(self) -> None:
        self._ranks: list[np.ndarray] = []

    def add(self, scores: np.ndarray, targets: np.ndarray) -> np.ndarray:
        ranks = target_ranks(scores, targets)
        self._ranks.append(ranks)
        return ranks

    @property
    def ranks(self) -> np.ndarray:
        return np.concatenate(self._ranks) if self._ranks else np.empty(0)

    def result(self) -> dict[str, float]:
        return metrics_from_ranks(self.ranks)
