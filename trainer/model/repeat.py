"""The repeat path: a distribution over the items already in the user's history, mixed with the softmax over
all items by a learned gate (RepeatNet-style: check-in users mostly go back to places they have been).

Each distinct history item is scored from statistics of its visits relative to the query event, summed over
the visits: how long ago (recency bucket), at what hour-of-day and day-of-week offset, whether the visit came
right after the place the user is at now, and how many; plus the item's distance bucket from the current place
and whether it is the current place. A small MLP maps these, with the encoder's state of the query, to a score,
and a learned attention match between the query and the item's visits is added. The visits' keys come from the
last encoder layer's input, so serving runs that layer at the query alone.
"""

from __future__ import annotations

import itertools
import math

import torch
from torch import nn

from trainer.model.codes import N_DAY_OF_WEEK_CODES, N_HOUR_OF_DAY_CODES
from trainer.model.config import ClickcastConfig


def first_occurrence(items: torch.Tensor) -> torch.Tensor:
    """[B, L] -> for each position, the first position in its row holding the same item (through a
    [B, largest index + 1] table, not an L x L comparison)."""
    positions = torch.arange(items.shape[1], device=items.device).expand_as(items)
    table = torch.full((len(items), _width(items)), items.shape[1], dtype=torch.long, device=items.device)
    return table.scatter_reduce_(1, items, positions, "amin").gather(1, items)


def same_item_totals(items: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """[B, L]: for each position, the sum of `values` over the positions of its row that hold the same item
    (through a [B, largest index + 1] table, not a column for every item)."""
    return torch.zeros(len(items), _width(items), dtype=values.dtype).scatter_add_(1, items, values).gather(1, items)


def _width(items: torch.Tensor) -> int:
    return int(items.max()) + 1 if items.numel() else 1


class RepeatHead(nn.Module):
    def __init__(self, cfg: ClickcastConfig):
        super().__init__()
        self.n_gap, self.n_dist = cfg.n_gap_buckets, cfg.n_distance_buckets
        # Counts of each recency / hour offset / day offset code, then "came right after the current place", visits.
        sizes = {"recency": self.n_gap, "hour_diff": N_HOUR_OF_DAY_CODES, "day_diff": N_DAY_OF_WEEK_CODES}
        starts = [0, *itertools.accumulate(sizes.values())]
        self.code_offsets = dict(zip(sizes, starts, strict=False))
        self.n_stats = starts[-1] + 2
        self.features = nn.Linear(self.n_stats + self.n_dist + 1, cfg.hidden)
        self.context = nn.Linear(cfg.hidden, cfg.hidden)
        self.out = nn.Sequential(nn.GELU(), nn.Linear(cfg.hidden, 1))
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.scale = 1.0 / math.sqrt(cfg.hidden)
        self.gate = nn.Linear(cfg.hidden, 1)

    def forward(
        self,
        memory: torch.Tensor,
        items: torch.Tensor,
        rows: torch.Tensor,
        cols: torch.Tensor,
        hq: torch.Tensor,
        pairs: dict[str, torch.Tensor],
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Repeat weights [P, L] (a distribution over the distinct history items, each at its first position)
        and log gate [P, 2] = (log p(generate), log p(repeat)); a query without history always generates."""
        valid = pairs["valid"]
        hist = items[rows]
        n_queries, length = hist.shape
        current = items[rows, cols]
        prev = nn.functional.pad(hist[:, :-1], (1, 0))
        follows = (prev == current[:, None]) & nn.functional.pad(valid[:, :-1], (1, 0))

        # Candidates are (query, distinct item) pairs, named by the item's first position in the row; visits
        # are the valid (query, position) pairs. Work is proportional to the visits, not to queries x L x L.
        vq, vpos = valid.nonzero(as_tuple=True)
        group = first_occurrence(items)[rows]
        keys, of_visit = torch.unique(vq * length + group[vq, vpos], return_inverse=True)
        cq, cpos = keys // length, keys % length

        stats = torch.zeros(len(keys), self.n_stats)
        ones = torch.ones(len(vq))
        for name, offset in self.code_offsets.items():
            stats.index_put_((of_visit, pairs[name][vq, vpos] + offset), ones, accumulate=True)
        stats.index_put_((of_visit, torch.full_like(vq, self.n_stats - 2)), follows[vq, vpos].float(), accumulate=True)
        stats.index_put_((of_visit, torch.full_like(vq, self.n_stats - 1)), ones, accumulate=True)
        x = torch.cat(
            [
                stats.log1p(),
                nn.functional.one_hot(pairs["dist"][cq, cpos], self.n_dist).float(),
                (hist[cq, cpos] == current[cq]).float()[:, None],
            ],
            dim=-1,
        )
        score = self.out(self.features(x) + self.context(hq)[cq]).squeeze(-1)
        # + log of the summed attention over the item's visits (a grouped logsumexp, shifted by the query's max).
        match = (self.query(hq)[vq] * self.key(memory)[rows[vq], vpos]).sum(-1) * self.scale
        shift = torch.zeros(n_queries).scatter_reduce(0, vq, match.detach(), "amax", include_self=False)
        mass = torch.zeros(len(keys)).index_add(0, of_visit, (match - shift[vq]).exp())
        score = score + mass.log() + shift[cq]
        # Softmax over each query's candidates.
        top = torch.zeros(n_queries).scatter_reduce(0, cq, score.detach(), "amax", include_self=False)
        mass = (score - top[cq]).exp()
        weight = mass / torch.zeros(n_queries).index_add(0, cq, mass)[cq]
        weights = torch.zeros(n_queries, length).index_put((cq, cpos), weight)
        has_history = torch.zeros(n_queries, dtype=torch.bool).index_fill(0, cq, True)
        g = self.gate(hq).squeeze(-1)
        log_gate = torch.stack([nn.functional.logsigmoid(g), nn.functional.logsigmoid(-g)], dim=-1)
        no_repeat = torch.tensor([0.0, float("-inf")], device=hq.device).expand_as(log_gate)
        return weights, torch.where(has_history[:, None], log_gate, no_repeat)
