"""The repeat path: attention from the query event over the user's history, turned into a distribution over items.

Check-in users mostly go back to places they have been, so besides the softmax over all items the model copies
from its history (RepeatNet / CopyNet style). A history event's pointer score is a learned match of the two
contextual states plus query-dependent biases for how long ago it was, its hour-of-day offset to the query and
its distance from the query's place, so recency, routine and locality each get a learned weight per user state.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from trainer.model.codes import N_HOUR_OF_DAY_CODES
from trainer.model.config import ClickcastConfig


class PointerHead(nn.Module):
    def __init__(self, cfg: ClickcastConfig):
        super().__init__()
        self.query = nn.Linear(cfg.hidden, cfg.hidden)
        self.key = nn.Linear(cfg.hidden, cfg.hidden)
        self.sizes = (cfg.n_gap_buckets, N_HOUR_OF_DAY_CODES, cfg.n_distance_buckets)
        self.pair_bias = nn.Linear(cfg.hidden, sum(self.sizes))
        self.gate = nn.Linear(cfg.hidden, 1)
        self.scale = 1.0 / math.sqrt(cfg.hidden)

    def forward(
        self, h: torch.Tensor, rows: torch.Tensor, hq: torch.Tensor, pairs: dict[str, torch.Tensor]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Pointer weights [P, L] over history positions (0 where not allowed) and log gate [P, 2]
        = (log p(generate), log p(copy)); a query without any allowed position always generates."""
        scores = torch.einsum("pd,pld->pl", self.query(hq), self.key(h)[rows]) * self.scale
        biases = self.pair_bias(hq).split(self.sizes, dim=-1)
        for bias, name in zip(biases, ("recency", "hour_diff", "dist"), strict=True):
            scores = scores + bias.gather(1, pairs[name])
        valid = pairs["valid"]
        # A finite fill keeps rows without any allowed position NaN-free (uniform, then zeroed).
        weights = scores.masked_fill(~valid, -1e9).softmax(-1) * valid
        g = self.gate(hq).squeeze(-1)
        log_gate = torch.stack([nn.functional.logsigmoid(g), nn.functional.logsigmoid(-g)], dim=-1)
        can_copy = valid.any(-1, keepdim=True)
        no_copy = torch.tensor([0.0, float("-inf")], device=hq.device).expand_as(log_gate)
        return weights, torch.where(can_copy, log_gate, no_copy)
