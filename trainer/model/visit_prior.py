"""The visit prior: the network's p(item) times the user's recency-weighted share of visits to the item, raised to
a weight chosen on validation after training (a product of experts, renormalised).

Measured on Foursquare NYC: the trained network spreads probability over the user's places more evenly than
their own visit history suggests; no training objective fixes that as directly as the weight, which is one
number tuned on held-out events (weight 0 = the network alone).

    log p'(i) = log p(i) + w * log(share(i) + FLOOR) - log Z
    share(i)  = sum over history visits v to i of exp(-age(v) / tau), divided by the row's total

Ages are counted from the row's newest event; only the history the model sees (its last max_len events) counts.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import torch

from trainer.data import UNK
from trainer.metrics import RankAccumulator
from trainer.model.repeat import same_item_totals

DAY_S = 86400.0
FLOOR = 1e-3  # share given to places the user never went to: softens the prior instead of ruling them out
TAU_DAYS = (3.0, 30.0, 180.0)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8)


def visit_shares(items: np.ndarray, ts: np.ndarray, tau_days: float) -> np.ndarray:
    """share(item at each position) [B, L] float64 from [B, L] histories (left-padded item indices, unix seconds);
    0 at padding and unknown items."""
    age = ts[:, -1:] - ts
    weight = np.where(items > UNK, np.exp(-np.maximum(age, 0.0) / (tau_days * DAY_S)), 0.0)
    totals = same_item_totals(torch.from_numpy(np.ascontiguousarray(items)), torch.from_numpy(weight)).numpy()
    share = totals / np.maximum(weight.sum(1, keepdims=True), 1e-300)
    return np.where(items > UNK, share, 0.0)


def apply(log_p: torch.Tensor, items: np.ndarray, shares: np.ndarray, weight: float) -> torch.Tensor:
    """log p' [B, n_items] from the network's log p and the `visit_shares` of the same histories. Only the
    history's items get more than FLOOR, and a common factor cancels in the normalisation, so only their
    columns change before it: the same result as the dense formula at the cost of the history, not of n_items."""
    if weight == 0.0:
        return log_p
    items_t = torch.from_numpy(np.ascontiguousarray(items))
    # Repeated items write equal values.
    return log_p.scatter(1, items_t, log_p.gather(1, items_t) + torch.from_numpy(lift(shares, weight))).log_softmax(-1)


def lift(shares: np.ndarray, weight: float) -> np.ndarray:
    """float32 [B, L]: what the prior adds to the log p of the item at each history position before renormalising
    (0 at padding and unknown items, whose share is 0)."""
    return (weight * (np.log(shares + FLOOR) - np.log(FLOOR))).astype(np.float32)


def choose(
    batches: Iterable[tuple[torch.Tensor, np.ndarray, np.ndarray, np.ndarray]],
) -> tuple[float, float, dict[tuple[float, float], float]]:
    """(weight, tau_days) of the best MRR over (network log p, items, ts, targets) batches, and every MRR."""
    ranks = {(w, tau): RankAccumulator() for tau in TAU_DAYS for w in WEIGHTS}
    for log_p, items, ts, targets in batches:
        for tau in TAU_DAYS:
            shares = visit_shares(items, ts, tau)
            for w in WEIGHTS:
                ranks[(w, tau)].add(apply(log_p, items, shares, w).numpy(), targets)
    mrr = {key: acc.result()["mrr"] for key, acc in ranks.items()}
    # Ties (e.g. every tau at weight 0) go to the first key: the smallest weight.
    weight, tau = max(mrr, key=lambda key: (mrr[key], -key[0]))
    return weight, tau, mrr
