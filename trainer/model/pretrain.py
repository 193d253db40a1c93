"""Self-supervised pre-training: masked item modelling (BERT4Rec-style cloze) over the training windows.

Bidirectional attention; a random share of real events has its item replaced by [MASK] (and its place hidden)
and the encoder predicts it with the softmax over all items, learning item, time and place context before
fine-tuning for the next item.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from trainer.data import PAD
from trainer.model.network import ClickcastNet
from trainer.model.training_set import TrainingSet, epoch_order


def mask_positions(items: torch.Tensor, prob: float, generator: torch.Generator) -> torch.Tensor:
    """Bool [B, L]: each real event masked with `prob`; a row with none masked gets its newest event masked."""
    real = items != PAD
    masked = (torch.rand(items.shape, generator=generator) < prob) & real
    none = ~masked.any(-1) & real.any(-1)
    masked[none, -1] = True  # rows are left-padded: the last column is real
    return masked


def pretrain_epoch(
    net: ClickcastNet,
    data: TrainingSet,
    optimizer: torch.optim.Optimizer,
    batch_size: int,
    mask_prob: float,
    rng: np.random.Generator,
    generator: torch.Generator,
    windows: int = 0,
) -> float:
    """One pass over the windows (`windows` of them drawn at random, if not 0); returns the mean masked-item
    cross-entropy."""
    net.train()
    total, count = 0.0, 0
    order = torch.from_numpy(epoch_order(len(data), windows, rng))
    for lo in range(0, len(order), batch_size):
        idx = order[lo : lo + batch_size]
        codes = {k: v[idx] for k, v in data.codes.items()}
        masked = mask_positions(codes["items"], mask_prob, generator)
        _, _, states = net.encode(codes, causal=False, masked=masked)
        loss = nn.functional.cross_entropy(net.masked_items(states, masked), codes["items"][masked])
        optimizer.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        optimizer.step()
        total += loss.item() * len(idx)
        count += len(idx)
    return total / max(count, 1)
