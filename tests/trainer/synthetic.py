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


def write_csv(path, frame_: pd.DataFrame) -> None:
    """A canonical frame as a CSV in the default (foursquare_nyc) column layout."""
    pd.DataFrame(
        {
            "user_id": frame_["user_id"],
            "poi_id": frame_["item_id"],
            "latitude": frame_["latitude"],
            "longitude": frame_["longitude"],
            "utc_time_approx": pd.to_datetime(frame_["ts"], unit="s", utc=True).dt.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "category_name": frame_["category"],
        }
    ).to_csv(path, index=False)


def habitual_frame(n_users: int = 20, days: int = 60, seed: int = 0) -> pd.DataFrame:
    """Users who cycle through a few personal places with some noise: a learnable, repetitive pattern."""
    rng = np.random.default_rng(seed)
    rows = []
    for u in range(n_users):
        places = [f"p{(u * 3 + k) % 40}" for k in range(4)]
        t = 1.34e9 + rng.uniform(0, 3600)
        for step in range(days * 3):
            item = places[step % 4] if rng.random() < 0.8 else f"p{rng.integers(0, 40)}"
            rows.append((f"u{u}", item, t))
            t += rng.uniform(3, 10) * 3600
    events = pd.DataFrame(rows, columns=["user_id", "item_id", "ts"])
    code = events["item_id"].str[1:].astype(int)
    events["event_id"] = [f"e{i}" for i in range(len(events))]
    events["latitude"] = 40.70 + code / 500.0
    events["longitude"] = -74.0 + (code % 7) / 300.0
    events["category"] = "cat" + (code % 5).astype(str)
    return events.sort_values("ts", kind="stable").reset_index(drop=True)[
        ["event_id", "user_id", "item_id", "ts", "latitude", "longitude", "category"]
    ]
