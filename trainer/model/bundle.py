"""A trained clickcast model with everything needed to score raw histories: network, vocabularies, config.

Saved as a folder (config.json, vocab.json, weights.pt); the Triton model loads the same folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from trainer.data import N_SPECIAL, UNK
from trainer.model import visit_prior
from trainer.model.codes import CellVocab, ItemDistanceMemo, event_codes
from trainer.model.config import ClickcastConfig
from trainer.model.inputs import Histories, Queries, last_position_queries, to_tensors, trim_padding
from trainer.model.network import ClickcastNet

CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE = "config.json", "vocab.json", "weights.pt"


@dataclass(frozen=True)
class ScoringInputs:
    h: Histories  # trimmed
    first: int  # position of column 0 (leading padding columns trimmed off)
    codes: dict[str, np.ndarray]  # event codes [B, L]
    queries: Queries  # the newest event of each row


@dataclass
class ClickcastModel:
    cfg: ClickcastConfig
    net: ClickcastNet
    cells: CellVocab
    item_ids: list[str]  # index -> raw item id
    item_lat: np.ndarray  # float64 per item index
    item_lon: np.ndarray
    # Unix seconds of the newest event the fit learned from: trained on, or chose its epochs and visit prior on
    # (None: saved before this was recorded); `clickcast evaluate` scores only events after it.
    trained_until: float | None = None

    def __post_init__(self) -> None:
        self._index = {raw: i for i, raw in enumerate(self.item_ids) if i > UNK}
        self._distances = ItemDistanceMemo(self.item_lat, self.item_lon, self.cfg)

    def joined_item_indices(self, rows: list[str], length: int) -> np.ndarray:
        """[B, length] item indices from one string per row (the newest ids, oldest first, joined by spaces;
        the Triton contract), right-aligned: the columns before them are padding."""
        out = np.zeros((len(rows), length), dtype=np.int64)
        get = self._index.get
        for row, text in enumerate(rows):
            ids = text.split()
            if len(ids) > length:
                raise ValueError(f"a history of {len(ids)} items does not fit {length} columns")
            if ids:
                out[row, length - len(ids) :] = [get(i, UNK) for i in ids]
        return out

    def log_probs(self, h: Histories) -> torch.Tensor:
        """log p(next item) [B, n_items] after each row's newest event (PAD/UNK columns are -inf)."""
        log_p = self.network_log_probs(h)
        weight = self.cfg.visit_prior_weight
        if weight == 0.0:
            return log_p
        shares = visit_prior.visit_shares(h.items, h.ts, self.cfg.visit_prior_tau_days)
        return visit_prior.apply(log_p, h.items, shares, weight)

    def network_log_probs(self, h: Histories) -> torch.Tensor:
        """log_probs without the visit prior."""
        if self.net.training:
            self.net.eval()
        s = self.scoring_inputs(h)
        with torch.no_grad():
            memory, hq = self.net.encode_newest(to_tensors(s.codes), first_position=s.first)
            q = s.queries
            return self.net.next_item(memory, hq, torch.from_numpy(s.h.items), q.rows, q.cols, q.pairs, q.item_dist)

    @property
    def n_answerable(self) -> int:
        """Items a prediction can name (the vocabulary without PAD and UNK): the largest top-k there is."""
        return len(self.item_ids) - N_SPECIAL

    def scoring_inputs(self, h: Histories) -> ScoringInputs:
        """What the network scores the newest event of each row from: the histories without their all-padding
        leading columns (short histories cost what they hold, not L), their event codes and the query codes.
        The torch path and the exported graph (trainer/serving/graph.py) both start here."""
        h, first = trim_padding(Histories(h.items.astype(np.int64, copy=False), h.ts, h.lat, h.lon))
        codes = event_codes(h.items, h.ts, h.lat, h.lon, self.cells, self.cfg)
        return ScoringInputs(
            h, first, codes, last_position_queries(h, self.cfg, self.item_lat, self.item_lon, self._distances)
        )

    def save(self, out_dir: str | Path) -> None:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / CONFIG_FILE).write_text(json.dumps(self.cfg.to_dict(), indent=2))
        vocab = {
            "items": self.item_ids,
            "item_lat": self.item_lat.tolist(),
            "item_lon": self.item_lon.tolist(),
            "cells": self.cells.cells,
            "geohash_precision": self.cells.precision,
            "trained_until": self.trained_until,
        }
        (out / VOCAB_FILE).write_text(json.dumps(vocab))
        torch.save(self.net.state_dict(), out / WEIGHTS_FILE)

    @classmethod
    def load(cls, model_dir: str | Path) -> ClickcastModel:
        src = Path(model_dir)
        cfg = ClickcastConfig.from_dict(json.loads((src / CONFIG_FILE).read_text()))
        vocab = json.loads((src / VOCAB_FILE).read_text())
        if not isinstance(vocab, dict):
            raise ValueError(f"{src / VOCAB_FILE} is not a JSON object")
        cells = CellVocab(cells=vocab["cells"], precision=vocab["geohash_precision"])
        net = ClickcastNet(cfg, n_items=len(vocab["items"]), n_cells=len(cells))
        net.load_state_dict(torch.load(src / WEIGHTS_FILE, weights_only=True))
        net.eval()
        return cls(
            cfg=cfg,
            net=net,
            cells=cells,
            item_ids=list(vocab["items"]),
            item_lat=np.asarray(vocab["item_lat"], dtype=np.float64),
            item_lon=np.asarray(vocab["item_lon"], dtype=np.float64),
            trained_until=vocab.get("trained_until"),
        )
