"""Integer codes the network embeds, computed from raw history arrays by the shared `features` functions.

Trainer and Triton model both call these, so a history is encoded the same way offline and online.
Histories are [B, L] arrays, oldest .. newest, left-padded (item PAD, ts 0, lat/lon 0). Code 0 always
means "padding / no value"; every embedding table reserves row 0 for it.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from features.geo import haversine_km
from features.sequence import HOURS_PER_WEEK, distance_bucket, gap_bucket, geohash_cells, hour_of_week
from trainer.data import PAD, UNK
from trainer.model.config import ClickcastConfig

UNKNOWN_CELL = 1
MEMO_LIMIT = 1_000_000  # remembered points per CellVocab
N_HOUR_CODES = HOURS_PER_WEEK + 1
N_HOUR_OF_DAY_CODES = 24 + 1
N_DAY_OF_WEEK_CODES = 7 + 1


@dataclass(frozen=True)
class CellVocab:
    """Geohash cells seen in training -> index (0 padding, 1 a cell never seen in training)."""

    cells: list[str]
    precision: int

    @classmethod
    def build(cls, lat: np.ndarray, lon: np.ndarray, precision: int) -> CellVocab:
        seen = sorted(set(geohash_cells(*_unique_points(lat, lon)[:2], precision)))
        return cls(cells=["<pad>", "<unknown>", *seen], precision=precision)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.cells) if i > UNKNOWN_CELL})
        object.__setattr__(self, "_memo", {})

    def __len__(self) -> int:
        return len(self.cells)

    def encode(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        """int64 codes with the shape of `lat`. Points are places that recur, so each one's code is remembered
        (geohashing in Python is most of the cost of encoding a history), and each distinct point of a call is
        looked up once."""
        lat, lon = np.asarray(lat, dtype=np.float64), np.asarray(lon, dtype=np.float64)
        distinct_lat, distinct_lon, where = _unique_points(lat, lon)
        points = list(zip(distinct_lat.tolist(), distinct_lon.tolist(), strict=True))
        memo: dict[tuple[float, float], int] = self._memo  # type: ignore[attr-defined]
        missing = [p for p in points if p not in memo]
        if missing:
            if len(memo) + len(missing) > MEMO_LIMIT:
                memo.clear()
                missing = points
            index = self._index  # type: ignore[attr-defined]
            cells = geohash_cells([p[0] for p in missing], [p[1] for p in missing], self.precision)
            memo.update((p, index.get(c, UNKNOWN_CELL)) for p, c in zip(missing, cells, strict=True))
        codes = np.fromiter((memo[p] for p in points), dtype=np.int64, count=len(points))
        return codes[where].reshape(lat.shape)


def _unique_points(lat: np.ndarray, lon: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (lat, lon) points, and for each input point the index of its distinct one. As complex
    numbers, numpy finds them with one sort of a flat array instead of a row-wise one."""
    distinct, where = np.unique(np.ravel(lat) + 1j * np.ravel(lon), return_inverse=True)
    return distinct.real, distinct.imag, where.ravel()


def event_codes(
    items: np.ndarray, ts: np.ndarray, lat: np.ndarray, lon: np.ndarray, cells: CellVocab, cfg: ClickcastConfig
) -> dict[str, np.ndarray]:
    """Per-event codes [B, L]: gap to and hop distance from the previous event, hour of week, geohash cell."""
    real = items != PAD
    prev_real = np.zeros_like(real)
    prev_real[:, 1:] = real[:, :-1]
    linked = real & prev_real
    gap = np.zeros_like(items)
    gap[:, 1:] = gap_bucket(ts[:, 1:] - ts[:, :-1], cfg.n_gap_buckets)
    hop = np.zeros_like(items)
    hop[:, 1:] = distance_bucket(haversine_km(lat[:, :-1], lon[:, :-1], lat[:, 1:], lon[:, 1:]), cfg.n_distance_buckets)
    return {
        "items": items.astype(np.int64),
        "gap": np.where(linked, gap, 0),
        "hop": np.where(linked, hop, 0),
        "hour": np.where(real, hour_of_week(ts) + 1, 0),
        "cell": np.where(real, cells.encode(lat, lon), 0),
    }


def pair_codes(
    items: np.ndarray,
    ts: np.ndarray,
    lat: np.ndarray,
    lon: np.ndarray,
    rows: np.ndarray,
    cols: np.ndarray,
    cfg: ClickcastConfig,
) -> dict[str, np.ndarray]:
    """How each history event j relates to a query event (rows[p], cols[p]), for the repeat path: [P, L] codes.

    recency = gap_bucket(t_query - t_j), hour_diff / day_diff = hour-of-day / day-of-week difference + 1,
    dist = distance_bucket between the two positions; all 0 where j is padding, UNK or after the query.
    """
    length = items.shape[1]
    # An UNK event can be attended to by the encoder but not copied: UNK is never a right answer.
    valid = (items[rows] > UNK) & (np.arange(length)[None, :] <= cols[:, None])
    q_ts, q_lat, q_lon = ts[rows, cols][:, None], lat[rows, cols][:, None], lon[rows, cols][:, None]
    recency = gap_bucket(q_ts - ts[rows], cfg.n_gap_buckets)
    visit_how, query_how = hour_of_week(ts[rows]), hour_of_week(q_ts)
    hour_diff = (visit_how - query_how) % 24 + 1
    day_diff = (visit_how // 24 - query_how // 24) % 7 + 1
    dist = distance_bucket(haversine_km(q_lat, q_lon, lat[rows], lon[rows]), cfg.n_distance_buckets)
    return {
        "valid": valid,
        "recency": np.where(valid, recency, 0),
        "hour_diff": np.where(valid, hour_diff, 0),
        "day_diff": np.where(valid, day_diff, 0),
        "dist": np.where(valid, dist, 0),
    }


def item_distance_codes(
    lat: np.ndarray, lon: np.ndarray, item_lat: np.ndarray, item_lon: np.ndarray, cfg: ClickcastConfig
) -> np.ndarray:
    """uint8 [P, n_items]: distance bucket from each query position to every item's position."""
    km = haversine_km(np.asarray(lat, np.float64)[:, None], np.asarray(lon, np.float64)[:, None], item_lat, item_lon)
    return distance_bucket(km, cfg.n_distance_buckets).astype(np.uint8)


class ItemDistanceMemo:
    """`item_distance_codes` of query positions, remembered per position (serving: a user's current place recurs,
    and this is P x n_items haversines a call otherwise). Least recently used positions go first once the rows
    would exceed `budget_bytes` (one byte an item a row): a catalogue's places usually fit (the NYC check-ins hold
    ~5,000 positions, 25 MB), and a working set larger than the budget still keeps its most frequent places,
    where dropping everything at once would recompute them all."""

    def __init__(
        self, item_lat: np.ndarray, item_lon: np.ndarray, cfg: ClickcastConfig, budget_bytes: int = 64 * 2**20
    ):
        self.item_lat, self.item_lon, self.cfg = item_lat, item_lon, cfg
        self.limit = max(1, budget_bytes // max(1, len(item_lat)))
        self._rows: OrderedDict[tuple[float, float], np.ndarray] = OrderedDict()

    def lookup(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        points = list(zip(np.asarray(lat).tolist(), np.asarray(lon).tolist(), strict=True))
        rows, found, missing = self._rows, {}, []
        for p in dict.fromkeys(points):
            row = rows.get(p)
            if row is None:
                missing.append(p)
            else:
                rows.move_to_end(p)
                found[p] = row
        if missing:
            codes = item_distance_codes(
                np.array([p[0] for p in missing]),
                np.array([p[1] for p in missing]),
                self.item_lat,
                self.item_lon,
                self.cfg,
            )
            found.update(zip(missing, codes, strict=True))
            # Copies: a view would keep this call's whole [P, n_items] array alive as long as any of its rows.
            rows.update((p, row.copy()) for p, row in zip(missing, codes, strict=True))
            while len(rows) > self.limit:
                rows.popitem(last=False)
        return np.stack([found[p] for p in points])


TABLE_BUDGET_BYTES = 512 * 2**20


def item_distances(
    lat: np.ndarray, lon: np.ndarray, item_lat: np.ndarray, item_lon: np.ndarray, cfg, budget_bytes=TABLE_BUDGET_BYTES
) -> ItemDistanceTable | ItemDistanceMemo:
    """Distance codes for training queries at the given positions: a table of every distinct position when it fits
    `budget_bytes` (one byte an item a row: NYC's ~5,000 positions x 5,081 items are 25 MB), else a memo within the
    budget, since the table grows with positions x items (a catalogue of 50,000 places would need ~2.5 GB)."""
    distinct_lat, distinct_lon, _ = _unique_points(lat, lon)
    if len(distinct_lat) * len(item_lat) <= budget_bytes:
        return ItemDistanceTable(distinct_lat, distinct_lon, item_lat, item_lon, cfg)
    return ItemDistanceMemo(item_lat, item_lon, cfg, budget_bytes)


class ItemDistanceTable:
    """`item_distance_codes` precomputed once per distinct position (training queries repeat a few
    thousand places), so a batch gathers rows instead of computing P x n_items distances."""

    def __init__(self, lat: np.ndarray, lon: np.ndarray, item_lat: np.ndarray, item_lon: np.ndarray, cfg):
        """lat, lon: [P] distinct positions."""
        self._row = {p: i for i, p in enumerate(zip(lat.tolist(), lon.tolist(), strict=True))}
        self._codes = np.concatenate(
            [
                item_distance_codes(lat[lo : lo + 512], lon[lo : lo + 512], item_lat, item_lon, cfg)
                for lo in range(0, len(lat), 512)
            ]
        )

    def lookup(self, lat: np.ndarray, lon: np.ndarray) -> np.ndarray:
        rows = [self._row[(a, b)] for a, b in zip(np.asarray(lat).tolist(), np.asarray(lon).tolist(), strict=True)]
        return self._codes[rows]
