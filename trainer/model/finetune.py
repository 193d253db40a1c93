"""Fine-tuning for next-item prediction: causal attention, every selected position of a window is a query,
loss = cross-entropy of the (gated generation + repeat) distribution at the true next item."""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from trainer.data import PAD
from trainer.model.adversarial import fgsm_backward
from trainer.model.config import ClickcastConfig
from trainer.model.inputs import Histories, queries
from trainer.model.network import ClickcastNet
from trainer.model.training_set import TrainingSet, epoch_order


def window_batch(data: TrainingSet, windows: np.ndarray, cfg: ClickcastConfig, item_lat, item_lon):
    """Inputs of a batch of windows: (codes, queries, targets)."""
    local, cols, targets = data.queries_of(windows)
    h = data.hist
    sub = Histories(items=h.items[windows], ts=h.ts[windows], lat=h.lat[windows], lon=h.lon[windows])
    item_dist = None
    if data.distances is not None:
        item_dist = data.distances.lookup(sub.lat[local, cols], sub.lon[local, cols])
    q = queries(sub, local, cols, cfg, item_lat, item_lon, item_dist=item_dist)
    if q.item_dist is not None:  # widened once here: an adversarial step gathers with it twice
        q.item_dist = q.item_dist.long()
    t_windows = torch.from_numpy(windows)
    codes = {k: v[t_windows] for k, v in data.codes.items()}
    return codes, q, torch.from_numpy(targets)


def next_item_loss(net: ClickcastNet, codes, q, targets, delta: torch.Tensor | None = None) -> torch.Tensor:
    _, memory, states = net.encode(codes, causal=True, delta=delta)
    hq = states[q.rows, q.cols]
    log_p = net.next_item(memory, hq, codes["items"], q.rows, q.cols, q.pairs, q.item_dist, targets=targets)
    return -log_p.mean()


def finetune_epoch(
    net: ClickcastNet,
    data: TrainingSet,
    optimizer: torch.optim.Optimizer,
    cfg: ClickcastConfig,
    item_lat: np.ndarray,
    item_lon: np.ndarray,
    rng: np.random.Generator,
    on_batch: Callable[[float], None] | None = None,
) -> float:
    """One pass over the windows in random order; returns the mean next-item loss (clean part)."""
    net.train()
    order = epoch_order(len(data), cfg.epoch_windows, rng)
    total, count = 0.0, 0
    for lo in range(0, len(order), cfg.batch_size):
        codes, q, targets = window_batch(data, order[lo : lo + cfg.batch_size], cfg, item_lat, item_lon)
        if len(targets) == 0:
            continue
        optimizer.zero_grad()
        if cfg.adversarial:
            real = codes["items"] != PAD
            shape = (*codes["items"].shape, cfg.hidden)
            loss_of = functools.partial(next_item_loss, net, codes, q, targets)
            loss, _ = fgsm_backward(loss_of, shape, cfg.adv_eps, real, cfg.adv_weight)
        else:
            loss = next_item_loss(net, codes, q, targets)
            loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        total += loss.item() * len(targets)
        count += len(targets)
        if on_batch:
            on_batch(lo / len(order))
    return total / max(count, 1)
