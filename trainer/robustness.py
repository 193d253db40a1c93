"""Noisy histories for the robustness test: a share of the real history events replaced by random events.

A noise event is a random known item at that item's position, at the replaced event's time, so only the
"what/where" is wrong, as with a fake or mis-attributed click.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np

from trainer.batches import HistoryBatch
from trainer.data import N_SPECIAL, PAD, ItemVocab

NOISE_FRACTION = 0.1


def corrupt_batch(batch: HistoryBatch, vocab: ItemVocab, rng: np.random.Generator, fraction: float) -> HistoryBatch:
    """A copy of the batch with round(fraction * real events) of its non-pad history events replaced."""
    real = np.argwhere(batch.items != PAD)
    n_noise = round(fraction * len(real))
    chosen = real[rng.choice(len(real), size=n_noise, replace=False)] if n_noise else np.empty((0, 2), np.int64)
    rows, cols = chosen[:, 0], chosen[:, 1]
    noise = rng.integers(N_SPECIAL, vocab.n_items, size=n_noise)
    items, lat, lon = batch.items.copy(), batch.lat.copy(), batch.lon.copy()
    items[rows, cols] = noise
    lat[rows, cols] = vocab.lat[noise]
    lon[rows, cols] = vocab.lon[noise]
    return dataclasses.replace(batch, items=items, lat=lat, lon=lon)


def noise_transform(
    vocab: ItemVocab, seed: int = 0, fraction: float = NOISE_FRACTION
) -> Callable[[HistoryBatch], HistoryBatch]:
    """A seeded batch transform: the same batches in the same order get the same noise, so models compare fairly."""
    rng = np.random.default_rng(seed)
    return lambda batch: corrupt_batch(batch, vocab, rng, fraction)
