"""Raw history arrays -> network inputs, for training windows, evaluation batches and the Triton model alike."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainer.model.codes import CellVocab, ItemDistanceMemo, event_codes, item_distance_codes, pair_codes
from trainer.model.config import ClickcastConfig


@dataclass(frozen=True)
class Histories:
    """[B, L] raw arrays, oldest .. newest, left-padded."""

    items: np.ndarray  # int64 item indices
    ts: np.ndarray  # float64 unix seconds
    lat: np.ndarray  # float32 degrees
    lon: np.ndarray


@dataclass
class Queries:
    """The events whose next item is predicted: row and column in the histories, plus their pair codes."""

    rows: torch.Tensor  # int64 [P]
    cols: torch.Tensor  # int64 [P]
    pairs: dict[str, torch.Tensor] | None  # [P, L] each (None without the repeat path)
    item_dist: torch.Tensor | None  # uint8 [P, n_items], int64 in training batches (None without geo)


def to_tensors(codes: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    return {k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in codes.items()}


def history_codes(h: Histories, cells: CellVocab, cfg: ClickcastConfig) -> dict[str, torch.Tensor]:
    return to_tensors(event_codes(h.items, h.ts, h.lat, h.lon, cells, cfg))


def queries(
    h: Histories,
    rows: np.ndarray,
    cols: np.ndarray,
    cfg: ClickcastConfig,
    item_lat: np.ndarray,
    item_lon: np.ndarray,
    item_dist: np.ndarray | None = None,
) -> Queries:
    """Pair and distance codes of the query events; `item_dist` may be passed precomputed (training)."""
    pairs = to_tensors(pair_codes(h.items, h.ts, h.lat, h.lon, rows, cols, cfg)) if cfg.use_repeat else None
    if cfg.use_geo and item_dist is None:
        item_dist = item_distance_codes(h.lat[rows, cols], h.lon[rows, cols], item_lat, item_lon, cfg)
    return Queries(
        rows=torch.from_numpy(rows),
        cols=torch.from_numpy(cols),
        pairs=pairs,
        item_dist=torch.from_numpy(item_dist) if cfg.use_geo and item_dist is not None else None,
    )


def last_position_queries(
    h: Histories,
    cfg: ClickcastConfig,
    item_lat: np.ndarray,
    item_lon: np.ndarray,
    distances: ItemDistanceMemo | None = None,
) -> Queries:
    """One query per row at the newest event (column L-1): what serving and evaluation predict."""
    n, length = h.items.shape
    item_dist = distances.lookup(h.lat[:, -1], h.lon[:, -1]) if distances is not None and cfg.use_geo else None
    return queries(h, np.arange(n), np.full(n, length - 1), cfg, item_lat, item_lon, item_dist)


def trim_padding(h: Histories) -> tuple[Histories, int]:
    """Drop the leading columns that are padding in every row; returns the histories and how many went.
    Exact for the newest position's prediction: padding is masked out, and positions keep their index."""
    real = np.flatnonzero((h.items != 0).any(axis=0))
    first = int(real[0]) if len(real) else h.items.shape[1] - 1
    if first == 0:
        return h, 0
    return Histories(items=h.items[:, first:], ts=h.ts[:, first:], lat=h.lat[:, first:], lon=h.lon[:, first:]), first
