"""Input representation of one history event: item (+ its text) plus time and place encodings."""

from __future__ import annotations

import itertools

import torch
from torch import nn

from trainer.model.codes import N_HOUR_CODES
from trainer.model.config import ClickcastConfig
from trainer.model.text import TEXT_DIM


def _versions(module: nn.Module) -> tuple[int, ...]:
    """In-place version counters of a module's tensors: a cache keyed by them is stale once an optimizer step
    or load_state_dict changes any of them."""
    return tuple(t._version for t in (*module.parameters(), *module.buffers()))


class ItemRepresentation(nn.Module):
    """Item id embedding + projected sentence vector of its text (a learned "no text" vector when it has none).

    The same vectors are the output embeddings of the softmax over items (weight tying).
    """

    def __init__(self, cfg: ClickcastConfig, n_items: int):
        super().__init__()
        self.use_text = cfg.use_text
        self.item = nn.Embedding(n_items, cfg.hidden, padding_idx=0)
        nn.init.normal_(self.item.weight, std=0.02)
        if cfg.use_text:
            self.register_buffer("text", torch.zeros(n_items, TEXT_DIM))
            self.register_buffer("has_text", torch.zeros(n_items, dtype=torch.bool))
            self.text_proj = nn.Linear(TEXT_DIM, cfg.hidden)
            self.no_text = nn.Parameter(torch.zeros(cfg.hidden))

    def set_text(self, vectors: torch.Tensor) -> None:
        if self.use_text:
            self.text.copy_(vectors)
            self.has_text.copy_(vectors.abs().sum(-1) > 0)

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        if not torch.is_grad_enabled():  # scoring: gather from the cached table instead of projecting texts again
            return self.all_items()[items]
        return self._represent(items)

    def _represent(self, items: torch.Tensor) -> torch.Tensor:
        out = self.item(items)
        if self.use_text:
            text = torch.where(self.has_text[items].unsqueeze(-1), self.text_proj(self.text[items]), self.no_text)
            out = out + text
        return out

    def all_items(self) -> torch.Tensor:
        """[n_items, d]; cached while scoring (no grad), keyed by the parameters' in-place version counters, so an
        optimizer step or load_state_dict invalidates it. Projecting every item's text is most of a batch-1 call."""
        every = torch.arange(self.item.num_embeddings, device=self.item.weight.device)
        if torch.is_grad_enabled():
            return self._represent(every)
        key = _versions(self)
        if getattr(self, "_cache_key", None) != key:
            self._cache = self._represent(every)
            self._cache_key = key
        return self._cache


class EventEmbedding(nn.Module):
    """Sum of the item representation and the enabled time/geo code embeddings; [MASK] replaces the item
    and its cell at masked positions (masked item modelling), and the hops into and out of a masked event are
    hidden too: the distance from a visible neighbour would tell where the masked place is."""

    def __init__(self, cfg: ClickcastConfig, n_items: int, n_cells: int):
        super().__init__()
        self.items = ItemRepresentation(cfg, n_items)
        self.mask = nn.Parameter(torch.randn(cfg.hidden) * 0.02)
        tables: dict[str, int] = {}
        if cfg.use_time:
            tables |= {"gap": cfg.n_gap_buckets, "hour": N_HOUR_CODES}
        if cfg.use_geo:
            tables |= {"hop": cfg.n_distance_buckets, "cell": n_cells}
        self.codes = nn.ModuleDict({k: nn.Embedding(n, cfg.hidden, padding_idx=0) for k, n in tables.items()})
        for table in self.codes.values():
            nn.init.normal_(table.weight, std=0.02)

    def forward(self, codes: dict[str, torch.Tensor], masked: torch.Tensor | None = None) -> torch.Tensor:
        if masked is None and not torch.is_grad_enabled():
            return self._scoring_sum(codes)
        x = self.items(codes["items"])
        hidden = {}
        if masked is not None:
            x = torch.where(masked.unsqueeze(-1), self.mask, x)
            # An event's hop is the distance from the event before it.
            hidden = {"cell": masked, "hop": masked | nn.functional.pad(masked[:, :-1], (1, 0))}
        for name, table in self.codes.items():
            c = codes[name]
            if name in hidden:
                c = c.masked_fill(hidden[name], 0)
            x = x + table(c)
        return x

    def _scoring_sum(self, codes: dict[str, torch.Tensor]) -> torch.Tensor:
        """The same sum through one `embedding_bag` over all tables stacked (cached like the item table):
        one pass instead of a lookup and a [B, L, d] addition per table."""
        key = _versions(self)
        if getattr(self, "_stack_key", None) != key:
            tables = [self.items.all_items(), *(table.weight for table in self.codes.values())]
            self._stack = torch.cat(tables)
            self._offsets = torch.tensor([0, *itertools.accumulate(len(t) for t in tables[:-1])])
            self._stack_key = key
        names = ["items", *self.codes]
        rows = torch.stack([codes[name] for name in names], dim=-1) + self._offsets
        summed = nn.functional.embedding_bag(rows.view(-1, len(names)), self._stack, mode="sum")
        return summed.view(*rows.shape[:-1], -1)
