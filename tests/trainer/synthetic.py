"""Small hand-made event frames in the canonical columns of `schemas.csv_source.read_events_frame`."""

from __future__ import annotations

import zlib

import numpy as np
import pandas as pd

# Item positions on a small grid in Manhattan; "far" is ~10 km away.
POSITIONS = {
    "a": (40.7500, -73.9900),
    "b": (40.7510, -73.9900),
    "c": (40.7600, -73.9800),
    "d": (40.7000, -73.9500),
    "far": (40.8400, -73.9000),
}


def frame(events: list[tuple[str, str, float]], categories: dict[str, str] | None = None) -> pd.DataFrame:
    """(user, item, ts) rows -> canonical frame; positions from POSITIONS (or a hashed grid point)."""
    categories = categories or {}
    rows = []
    for i, (user, item, ts) in enumerate(events):
        code = zlib.crc32(item.encode())
        lat, lon = POSITIONS.get(item, (40.7 + (code % 100) / 1000, -74.0 + (code % 37) / 1000))
        rows.append((f"e{i}", user, item, float(ts), lat, lon, categories.get(item, "")))
    out = pd.DataFrame(rows, columns=["event_id", "user_id", "item_id", "ts", "latitude", "longitude", "category"])
    return out.sort_values("ts", kind="stable").reset_index(drop=True)


def random_frame(n_events: int = 400, n_users: int = 12, n_items: int = 30, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ts = np.sort(rng.uniform(1.33e9, 1.36e9, n_events)).round()
    users = rng.integers(0, n_users, n_events)
    items = rng.integers(0, n_items, n_events)
    return pd.DataFrame(
        {
            "event_id": [f"e{i}" for i in range(n_events)],
            "user_id": [f"u{u}" for u in users],
            "item_id": [f"i{i}" for i in items],
            "ts": ts,
            "latitude": 40.7 + items / 1000.0,
            "longitude": -74.0 + items / 2000.0,
            "category": [f"cat{i % 4}" if i % 3 else "" for i in items],
        }
    )
