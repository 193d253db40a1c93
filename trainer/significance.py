"""How sure a gain is: the model's relative gain over another scorer on the same events, with a bootstrap interval.

The bootstrap resamples users, not events: one user's events are correlated (people go back to the same places),
so resampled events would give too narrow an interval. It is paired: both scorers are measured on the same draws.
"""

from __future__ import annotations

import numpy as np

from trainer.evaluate import EventRanks
from trainer.metrics import METRICS, event_values

RESAMPLES = 1000
LEVEL = 0.95
SEED = 0
DRAW_CELLS = 4_000_000  # bounds the draws held at once (resamples x users), so many users stay cheap
NO_RATIO: dict[str, float | None] = {"gain": None, "low": None, "high": None}


def relative_gain(
    model: EventRanks, other: EventRanks, resamples: int = RESAMPLES, level: float = LEVEL, seed: int = SEED
) -> dict[str, dict[str, float | None]]:
    """Per metric, `gain` = model / other - 1 on these events and the `low` .. `high` percentile interval of
    that ratio over `resamples` draws of users with replacement. None where `other` scores 0 (no ratio), as on
    an empty split."""
    if not np.array_equal(model.users, other.users):
        raise ValueError("the two scorers were not scored on the same events")
    if len(model.users) == 0:
        return {metric: dict(NO_RATIO) for metric in METRICS}
    user_of = np.unique(model.users, return_inverse=True)[1]
    n_users = int(user_of.max()) + 1
    mine, theirs = event_values(model.ranks), event_values(other.ranks)
    # Per-user sums: a draw's metric is (draw counts . sums) / (draw counts . events), and the event counts
    # cancel in the ratio of the two scorers.
    sums = np.stack([np.bincount(user_of, mine[m], n_users) for m in METRICS])  # [metrics, users]
    other_sums = np.stack([np.bincount(user_of, theirs[m], n_users) for m in METRICS])
    rng = np.random.default_rng(seed)
    chunk = max(1, DRAW_CELLS // max(n_users, 1))
    ratios = []
    for start in range(0, resamples, chunk):
        counts = rng.multinomial(n_users, np.full(n_users, 1.0 / n_users), size=min(chunk, resamples - start))
        ratios.append(_ratio(counts @ sums.T, counts @ other_sums.T))  # [draws, metrics]
    draws = np.concatenate(ratios)
    tail = 100 * (1 - level) / 2
    result: dict[str, dict[str, float | None]] = {}
    for i, metric in enumerate(METRICS):
        if other_sums[i].sum() <= 0:
            result[metric] = dict(NO_RATIO)
            continue
        # A draw can miss every event the other scorer hit (tiny data): no ratio there, so it is left out.
        low, high = np.nanpercentile(draws[:, i], [tail, 100 - tail])
        gain = sums[i].sum() / other_sums[i].sum() - 1.0
        result[metric] = {"gain": float(gain), "low": float(low), "high": float(high)}
    return result


def _ratio(mine: np.ndarray, theirs: np.ndarray) -> np.ndarray:
    return np.where(theirs > 0, mine / np.where(theirs > 0, theirs, 1.0), np.nan) - 1.0


def gains_over(model: EventRanks, others: dict[str, EventRanks]) -> dict[str, object]:
    """The model's `relative_gain` over each of `others` (by name), with how the intervals were drawn."""
    over = {name: relative_gain(model, ranks) for name, ranks in others.items()}
    return {"unit": "user", "resamples": RESAMPLES, "level": LEVEL, "over": over}
