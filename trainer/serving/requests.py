"""One Triton request's raw inputs -> the model's `Histories`, or a ValueError saying what is wrong with it.

Checked per request, so that a malformed one is answered with its own error instead of failing every request
that Triton's dynamic batcher put in the same call.
"""

from __future__ import annotations

import numpy as np

from trainer.data import PAD
from trainer.model.bundle import ClickcastModel
from trainer.model.inputs import Histories


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def request_histories(
    model: ClickcastModel, joined: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray
) -> Histories:
    """[B, 1] joined item ids (newest last) and [B, L] times / coordinates, right-aligned like the items."""
    length = ts.shape[1]
    if not (joined.shape[0] == ts.shape[0] == lat.shape[0] == lon.shape[0]) or not (ts.shape == lat.shape == lon.shape):
        raise ValueError(f"inputs of different shapes: {joined.shape}, {ts.shape}, {lat.shape}, {lon.shape}")
    items = model.joined_item_indices([_text(row[0]) for row in joined], length)
    real = items != PAD
    ts, lat, lon = ts.astype(np.float64), lat.astype(np.float32), lon.astype(np.float32)
    if not np.isfinite(ts[real]).all():
        raise ValueError("a history event has a non-finite timestamp")
    if not (np.abs(lat[real]) <= 90).all() or not (np.abs(lon[real]) <= 180).all():  # NaN fails too
        raise ValueError("a history event has coordinates outside ±90 / ±180 degrees")
    # Padding columns carry no event: whatever a client put there must not reach the encoders.
    return Histories(
        items=items, ts=np.where(real, ts, 0.0), lat=np.where(real, lat, 0.0), lon=np.where(real, lon, 0.0)
    )
