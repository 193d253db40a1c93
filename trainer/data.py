"""Check-in events as index arrays, an item vocabulary built from training events, and the chronological split.

The split is global in time (GETNext protocol): the first 80% of all events train, the next 10% validate, the last
10% test. Every event stays in `Checkins`, so a test event is predicted from everything before it, including the
user's val/test events; only the vocabulary and the baselines' statistics come from training events. An item first
seen after the training period maps to UNK and counts as a miss; a user with no earlier events is still scored.

The final fit (`final=True`) trains on train + validation once validation has chosen the settings: the same test
events, a vocabulary from the first 90% of events, no validation events.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from schemas.csv_source import ColumnMapping, read_events_frame

PAD, UNK = 0, 1
N_SPECIAL = 2  # known items are PAD+UNK+1 .. n_items-1


@dataclass(frozen=True)
class ItemVocab:
    ids: list[str]  # index -> raw item id ("<pad>", "<unk>", then training items)
    index: dict[str, int]  # raw item id -> index (lookups of unseen ids give UNK)
    text: list[str]  # per index: the item's category name ("" if none)
    lat: np.ndarray  # float64 per index: mean training position (0 for pad/unk)
    lon: np.ndarray

    @property
    def n_items(self) -> int:
        return len(self.ids)

    @classmethod
    def from_ids(cls, ids: list[str], lat: np.ndarray, lon: np.ndarray, text: list[str] | None = None) -> ItemVocab:
        """A saved vocabulary (ids[0:2] are the PAD/UNK placeholders), e.g. to score new data with a trained model."""
        return cls(
            ids=list(ids),
            index={raw: i for i, raw in enumerate(ids) if i >= N_SPECIAL},
            text=list(text) if text is not None else [""] * len(ids),
            lat=np.asarray(lat, dtype=np.float64),
            lon=np.asarray(lon, dtype=np.float64),
        )

    def encode(self, raw_ids: Iterable[str]) -> np.ndarray:
        get = self.index.get
        return np.fromiter((get(str(r), UNK) for r in raw_ids), dtype=np.int64)


@dataclass(frozen=True)
class Checkins:
    """All events in time order (stable: file order breaks ties)."""

    user: np.ndarray  # int64 user index into user_ids
    item: np.ndarray  # int64 item index (UNK for items unseen in training)
    ts: np.ndarray  # float64 unix seconds
    lat: np.ndarray  # float64 degrees
    lon: np.ndarray
    user_ids: list[str]
    vocab: ItemVocab

    def __len__(self) -> int:
        return len(self.item)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)


@dataclass(frozen=True)
class Split:
    """Boolean masks over events; exactly one is true for each event."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray


def chronological_split(n_events: int, train_frac: float = 0.8, val_frac: float = 0.1) -> Split:
    """Masks for events already sorted by time: first `train_frac` train, next `val_frac` val, rest test."""
    if train_frac <= 0 or val_frac < 0 or train_frac + val_frac >= 1:
        raise ValueError("need 0 < train_frac, 0 <= val_frac and train_frac + val_frac < 1")
    position = np.arange(n_events)
    n_train = int(n_events * train_frac)
    n_train_val = int(n_events * (train_frac + val_frac))
    return Split(
        train=position < n_train,
        val=(position >= n_train) & (position < n_train_val),
        test=position >= n_train_val,
    )


def merge_validation(split: Split) -> Split:
    """The final fit's split: validation events join training, the test events stay."""
    return Split(train=split.train | split.val, val=np.zeros_like(split.val), test=split.test)


def build_vocab(item_ids: pd.Series, categories: pd.Series, lats: pd.Series, lons: pd.Series) -> ItemVocab:
    """Vocabulary over the given (training) events, items in order of first appearance."""
    frame = pd.DataFrame({"item": item_ids.values, "cat": categories.values, "lat": lats.values, "lon": lons.values})
    grouped = frame.groupby("item", sort=False)
    known = list(grouped.groups.keys())
    positions = grouped[["lat", "lon"]].mean()
    # An item's text is its most frequent non-empty category name.
    named = frame[frame["cat"] != ""]
    text_of = named.groupby("item", sort=False)["cat"].agg(lambda c: c.value_counts().index[0]).to_dict()
    ids = ["<pad>", "<unk>", *known]
    return ItemVocab.from_ids(
        ids,
        lat=np.concatenate([[0.0, 0.0], positions.loc[known, "lat"].to_numpy(np.float64)]),
        lon=np.concatenate([[0.0, 0.0], positions.loc[known, "lon"].to_numpy(np.float64)]),
        text=["", "", *(text_of.get(raw, "") for raw in known)],
    )


class TooLittleData(ValueError):
    """The events cannot train a model (a tiny file): a one-line message for the user, not a bug."""


NO_NEXT_EVENT = "too few events to train the model: no user has two events in the training period"


def require_next_events(ck: Checkins, mask: np.ndarray) -> None:
    """TooLittleData unless some user has two events in `mask`: without one there is no next event to learn."""
    if not (np.bincount(ck.user[mask], minlength=ck.n_users) >= 2).any():
        raise TooLittleData(NO_NEXT_EVENT)


def drop_duplicate_events(frame: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """The events without repeats of an earlier row's (user, item, time), and how many were dropped. A copy
    would be scored right after its original, with that original as the newest event of its history: a free
    hit for every method that looks at the user's last place (NYC: 458 of 147,938 rows, same minute)."""
    repeated = frame.duplicated(["user_id", "item_id", "ts"])
    n = int(repeated.sum())
    return (frame[~repeated].reset_index(drop=True) if n else frame), n


def from_frame(
    frame: pd.DataFrame,
    train_frac: float = 0.8,
    val_frac: float = 0.1,
    vocab: ItemVocab | None = None,
    final: bool = False,
) -> tuple[Checkins, Split]:
    """Canonical event columns (as `read_events_frame` returns them) -> index arrays + split.

    The vocabulary is built from the training events unless a trained model's `vocab` is given. `final`: the
    final fit's split (validation merged into training, see `merge_validation`).
    """
    if len(frame) == 0:
        raise ValueError("no events")
    if not frame["ts"].is_monotonic_increasing:
        frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    split = chronological_split(len(frame), train_frac, val_frac)
    if final:
        split = merge_validation(split)
    train = frame[split.train]
    if vocab is None:
        vocab = build_vocab(train["item_id"], train["category"], train["latitude"], train["longitude"])
    user_codes, user_ids = pd.factorize(frame["user_id"], sort=False)
    checkins = Checkins(
        user=user_codes.astype(np.int64),
        item=vocab.encode(frame["item_id"]),
        ts=frame["ts"].to_numpy(np.float64),
        lat=frame["latitude"].to_numpy(np.float64),
        lon=frame["longitude"].to_numpy(np.float64),
        user_ids=[str(u) for u in user_ids],
        vocab=vocab,
    )
    return checkins, split


def load_dataset(
    path: str | Path,
    mapping: ColumnMapping | None = None,
    train_frac: float = 0.8,
    val_frac: float = 0.1,
    max_events: int | None = None,
    vocab: ItemVocab | None = None,
) -> tuple[Checkins, Split]:
    """Read a check-in/click CSV (optionally only its first `max_events` events in time), drop repeated events
    and split it."""
    frame, _ = drop_duplicate_events(read_events_frame(path, mapping, limit=max_events))
    return from_frame(frame, train_frac, val_frac, vocab)


def data_stats(ck: Checkins, split: Split) -> dict[str, float | int]:
    """Sizes and the share of val/test targets that no model can hit (item unseen in training)."""
    stats: dict[str, float | int] = {
        "events": len(ck),
        "users": ck.n_users,
        "items_known": ck.vocab.n_items - N_SPECIAL,
    }
    seen_before = _has_earlier_event(ck.user)
    for name, mask in (("train", split.train), ("val", split.val), ("test", split.test)):
        stats[f"{name}_events"] = int(mask.sum())
        if name != "train":
            stats[f"{name}_unk_share"] = float(np.mean(ck.item[mask] == UNK)) if mask.any() else 0.0
            stats[f"{name}_cold_users_share"] = float(np.mean(~seen_before[mask])) if mask.any() else 0.0
    stats["time_start"] = float(ck.ts[0])
    stats["time_end"] = float(ck.ts[-1])
    return stats


def _has_earlier_event(user: np.ndarray) -> np.ndarray:
    """Per event: does the same user have an event before it."""
    seen = np.ones(len(user), dtype=bool)
    _, first = np.unique(user, return_index=True)
    seen[first] = False
    return seen
