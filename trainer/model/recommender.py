"""`ClickcastRecommender`: the clickcast transformer behind the trainer's Recommender protocol.

fit = (optional) masked-item pre-training, then next-item fine-tuning with early stopping on validation MRR;
the weights of the best validation epoch are kept, then the visit prior's weight is chosen on validation. A fit
without validation events (the final fit on train + validation) reuses the epochs and the prior chosen before.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import time
from pathlib import Path

import numpy as np
import torch

from trainer.batches import HistoryBatch, history_batches
from trainer.data import Checkins, Split
from trainer.evaluate import rank_events
from trainer.model import visit_prior
from trainer.model.bundle import ClickcastModel
from trainer.model.codes import CellVocab
from trainer.model.config import ClickcastConfig
from trainer.model.explain import attribution
from trainer.model.finetune import finetune_epoch
from trainer.model.inputs import Histories
from trainer.model.network import ClickcastNet
from trainer.model.pretrain import pretrain_epoch
from trainer.model.text import embed_texts
from trainer.model.training_set import build_training_set
from trainer.recommender import Progress


def as_histories(batch: HistoryBatch) -> Histories:
    return Histories(items=batch.items, ts=batch.ts, lat=batch.lat, lon=batch.lon)


def first_events(mask: np.ndarray, n: int) -> np.ndarray:
    """`mask` limited to its first n true entries (n = 0: all)."""
    if n <= 0:
        return mask
    keep = np.zeros_like(mask)
    keep[np.flatnonzero(mask)[:n]] = True
    return keep


class ClickcastRecommender:
    def __init__(self, config: ClickcastConfig | None = None):
        self.config = config or ClickcastConfig.full()
        self.name = self.config.name
        self.model: ClickcastModel | None = None
        self.history: dict[str, list[float]] = {}
        # Fine-tuning epochs of the best validation MRR; a later fit without validation events (the final fit
        # on train + validation) trains exactly this many.
        self.chosen_epochs: int | None = None

    def fit(self, ck: Checkins, split: Split, progress: Progress | None = None) -> None:
        val_mask = first_events(split.val, self.config.val_events)
        scored = dataclasses.replace(split, val=val_mask)  # what each epoch is validated on
        validate = bool(val_mask.any())
        if validate:  # the prior is chosen for the network this fit trains; until then the network alone counts
            self.config = self.config.replace(visit_prior_weight=0.0)
        cfg = self.config
        torch.set_num_threads(cfg.threads)
        torch.manual_seed(cfg.seed)
        rng = np.random.default_rng(cfg.seed)
        generator = torch.Generator().manual_seed(cfg.seed)
        report = progress or (lambda message, fraction: None)
        vocab = ck.vocab

        # float32 like the histories the cells are looked up from, so a point maps to the same cell.
        cells = CellVocab.build(
            ck.lat[split.train].astype(np.float32), ck.lon[split.train].astype(np.float32), cfg.geohash_precision
        )
        # Before the text encoder loads: a file too small to train on says so at once.
        data = build_training_set(ck, split.train, cfg, cells, vocab.lat, vocab.lon)
        net = ClickcastNet(cfg, vocab.n_items, len(cells))
        if cfg.use_text:
            report(f"{self.name}: embedding item texts", 0.0)
            net.embed.items.set_text(torch.from_numpy(embed_texts(vocab.text)))
        trained_until = float(ck.ts[split.train].max())
        if validate:  # the epochs and the prior are chosen on these: scoring them again would flatter the model
            trained_until = max(trained_until, float(ck.ts[val_mask].max()))
        model = ClickcastModel(cfg, net, cells, list(vocab.ids), vocab.lat, vocab.lon, trained_until)
        self.model = model
        n_epochs = cfg.finetune_epochs if validate or self.chosen_epochs is None else self.chosen_epochs
        epochs = cfg.pretrain_epochs + n_epochs
        self.history = {"pretrain_loss": [], "train_loss": [], "val_acc@10": [], "val_mrr": [], "epoch_seconds": []}

        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        for epoch in range(cfg.pretrain_epochs):
            t0 = time.perf_counter()
            loss = pretrain_epoch(
                net, data, optimizer, cfg.batch_size, cfg.mask_prob, rng, generator, cfg.epoch_windows
            )
            self.history["pretrain_loss"].append(loss)
            self.history["epoch_seconds"].append(time.perf_counter() - t0)
            message = f"{self.name}: pre-train epoch {epoch + 1}/{cfg.pretrain_epochs} loss {loss:.3f}"
            report(message, (epoch + 1) / epochs)

        optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
        best_mrr, best_state, stale = -1.0, None, 0
        for epoch in range(n_epochs):
            t0 = time.perf_counter()
            loss = finetune_epoch(net, data, optimizer, cfg, vocab.lat, vocab.lon, rng)
            self.history["train_loss"].append(loss)
            message = f"{self.name}: epoch {epoch + 1}/{n_epochs} loss {loss:.3f}"
            if validate:
                val = rank_events(self, ck, scored, "val", batch_size=cfg.eval_batch_size).metrics()
                self.history["val_acc@10"].append(val["acc@10"])
                self.history["val_mrr"].append(val["mrr"])
                message += f" val acc@10 {val['acc@10']:.3f} mrr {val['mrr']:.3f}"
            self.history["epoch_seconds"].append(time.perf_counter() - t0)
            report(message, (cfg.pretrain_epochs + epoch + 1) / epochs)
            if not validate:
                continue
            if val["mrr"] > best_mrr:
                best_mrr, best_state, stale = val["mrr"], copy.deepcopy(net.state_dict()), 0
                self.chosen_epochs = epoch + 1
            else:
                stale += 1
                if stale >= cfg.patience:
                    break
        if best_state is not None:
            net.load_state_dict(best_state)
        net.eval()
        if validate and cfg.use_visit_prior:
            report(f"{self.name}: choosing the visit prior on validation", 1.0)
            self._choose_visit_prior(ck, val_mask)

    def _choose_visit_prior(self, ck: Checkins, mask: np.ndarray) -> None:
        model = self._fitted()
        batches = (
            (model.network_log_probs(as_histories(b)), b.items, b.ts, b.targets)
            for b in history_batches(ck, mask, model.cfg.max_len, model.cfg.eval_batch_size)
        )
        weight, tau, _ = visit_prior.choose(batches)
        self.config = self.config.replace(visit_prior_weight=weight, visit_prior_tau_days=tau)
        model.cfg = self.config

    def without_visit_prior(self) -> ClickcastRecommender:
        """The same trained network scored without the visit prior (the ablation)."""
        rec = ClickcastRecommender(self.config.replace(name=f"{self.name}_no_visit_prior", visit_prior_weight=0.0))
        rec.model = dataclasses.replace(self._fitted(), cfg=rec.config)
        return rec

    def _fitted(self) -> ClickcastModel:
        if self.model is None:
            raise RuntimeError(f"{self.name} is not trained: call fit() or load()")
        return self.model

    def score(self, batch: HistoryBatch) -> np.ndarray:
        return self._fitted().log_probs(as_histories(batch)).numpy().astype(np.float32)

    def attribution(self, batch: HistoryBatch) -> np.ndarray:
        """float32 [B, L] weight of each history position in the top prediction (sums to 1 per row)."""
        return attribution(self._fitted(), as_histories(batch))

    def save(self, out_dir: str | Path) -> None:
        self._fitted().save(out_dir)
        (Path(out_dir) / "history.json").write_text(json.dumps(self.history))

    @classmethod
    def load(cls, model_dir: str | Path) -> ClickcastRecommender:
        model = ClickcastModel.load(model_dir)
        rec = cls(model.cfg)
        rec.model = model
        history = Path(model_dir) / "history.json"
        if history.exists():
            rec.history = json.loads(history.read_text())
        return rec
