"""Training windows for the network: per-user windows of training events, encoded once, and the next-item
targets each window is trained on (causal attention, so one forward pass scores every position).

A user's windows overlap by `max_len - stride` events. By default a target event is trained on once, in the
window where it has the most context, so every target after a user's first window has >= max_len - stride
events of history (closer to the full-length histories it is evaluated on); with `every_position` each window
trains all its positions, so targets in the overlaps count twice, with two context lengths.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainer.batches import training_sequences
from trainer.data import NO_NEXT_EVENT, PAD, Checkins, TooLittleData
from trainer.model.codes import CellVocab, ItemDistanceMemo, ItemDistanceTable, item_distances
from trainer.model.config import ClickcastConfig
from trainer.model.inputs import Histories, history_codes


@dataclass
class TrainingSet:
    hist: Histories  # [N, L] windows
    codes: dict[str, torch.Tensor]  # event codes [N, L]
    query_row: np.ndarray  # [Q] window of each next-item target, sorted
    query_col: np.ndarray  # [Q] position of the event after which the target came
    target: np.ndarray  # [Q] target item index
    distances: ItemDistanceTable | ItemDistanceMemo | None

    def __len__(self) -> int:
        return len(self.hist.items)

    def queries_of(self, windows: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(position in `windows`, column, target) of every target of the given windows."""
        lo = np.searchsorted(self.query_row, windows, side="left")
        hi = np.searchsorted(self.query_row, windows, side="right")
        picks = np.concatenate([np.arange(a, b) for a, b in zip(lo, hi, strict=True)])
        local = np.repeat(np.arange(len(windows)), hi - lo)
        return local, self.query_col[picks], self.target[picks]


def epoch_order(n_windows: int, limit: int, rng: np.random.Generator) -> np.ndarray:
    """The windows an epoch trains on, in random order: all `n_windows`, or `limit` of them drawn at random."""
    order = rng.permutation(n_windows)
    return order[:limit] if limit > 0 else order


def next_item_targets(
    items: np.ndarray, event_index: np.ndarray, every_position: bool = False
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """From [N, L+1] windows: (row, col, target item) for each target event at col+1, each event once,
    taken where it has the longest context (largest col), or every occurrence with `every_position`."""
    rows, cols = np.nonzero((items[:, :-1] != PAD) & (event_index[:, 1:] >= 0))
    if every_position:
        return rows, cols, items[rows, cols + 1]
    events = event_index[rows, cols + 1]
    order = np.lexsort((cols, events))
    last = np.ones(len(order), dtype=bool)
    last[:-1] = events[order][1:] != events[order][:-1]
    keep = np.sort(order[last])  # row-major order
    rows, cols = rows[keep], cols[keep]
    return rows, cols, items[rows, cols + 1]


def build_training_set(
    ck: Checkins, mask: np.ndarray, cfg: ClickcastConfig, cells: CellVocab, item_lat: np.ndarray, item_lon: np.ndarray
) -> TrainingSet:
    w = training_sequences(ck, mask, cfg.max_len + 1, stride=cfg.stride)
    rows, cols, targets = next_item_targets(w.items, w.event_index, cfg.every_position)
    if len(targets) == 0:
        raise TooLittleData(NO_NEXT_EVENT)
    hist = Histories(items=w.items[:, :-1], ts=w.ts[:, :-1], lat=w.lat[:, :-1], lon=w.lon[:, :-1])
    distances = None
    if cfg.use_geo:
        real = hist.items != PAD
        distances = item_distances(hist.lat[real], hist.lon[real], item_lat, item_lon, cfg)
    return TrainingSet(
        hist=hist,
        codes=history_codes(hist, cells, cfg),
        query_row=rows,
        query_col=cols,
        target=targets,
        distances=distances,
    )
