import numpy as np

from features.sequence import distance_bucket, gap_bucket
from trainer.data import PAD, UNK
from trainer.model import ClickcastConfig
from trainer.model.codes import (
    UNKNOWN_CELL,
    CellVocab,
    ItemDistanceMemo,
    ItemDistanceTable,
    event_codes,
    item_distance_codes,
    item_distances,
    pair_codes,
)

CFG = ClickcastConfig()


def history():
    """Two rows of length 5: a user with 3 events (left-padded) and one with 5, the second containing an UNK."""
    items = np.array([[PAD, PAD, 5, 6, 5], [3, 4, UNK, 3, 7]])
    ts = np.array([[0, 0, 1e9, 1e9 + 30, 1e9 + 7200], [1e9, 1e9 + 60, 1e9 + 120, 1e9 + 3600, 1e9 + 86400]])
    lat = np.array([[0, 0, 40.70, 40.71, 40.70], [40.7, 40.8, 40.7, 40.7, 40.75]], dtype=np.float32)
    lon = np.array([[0, 0, -74.0, -74.0, -74.0], [-74.0, -74.0, -73.9, -74.0, -74.0]], dtype=np.float32)
    return items, ts, lat, lon


def test_event_codes_are_zero_at_padding_and_link_only_consecutive_real_events():
    items, ts, lat, lon = history()
    cells = CellVocab.build(lat[items != PAD], lon[items != PAD], 6)
    codes = event_codes(items, ts, lat, lon, cells, CFG)
    for name in ("gap", "hop", "hour", "cell"):
        assert (codes[name][0, :2] == 0).all(), name
    # The first real event of a row has no previous event.
    assert codes["gap"][0, 2] == 0 and codes["hop"][0, 2] == 0
    assert codes["gap"][0, 3] == gap_bucket(30.0) and codes["gap"][0, 4] == gap_bucket(7170.0)
    assert (codes["hour"][items != PAD] >= 1).all() and (codes["cell"][items != PAD] >= 2).all()


def test_cells_unseen_in_training_get_the_unknown_code():
    cells = CellVocab.build(np.array([40.7], np.float32), np.array([-74.0], np.float32), 6)
    codes = cells.encode(np.array([[40.7, 10.0]]), np.array([[-74.0, 10.0]]))
    assert codes[0, 0] == 2 and codes[0, 1] == UNKNOWN_CELL


def test_cell_codes_survive_the_memo_filling_up(monkeypatch):
    """Codes of repeated points equal a fresh encoding's, also when a call overflows the remembered points
    while some of its points were remembered before."""
    from features.geo import geohash_encode
    from trainer.model import codes as codes_module

    monkeypatch.setattr(codes_module, "MEMO_LIMIT", 3)
    lat = np.array([40.70, 40.71, 40.72, 40.73, 40.70])
    lon = np.array([-74.00, -74.01, -74.02, -74.03, -74.00])
    cells = CellVocab.build(lat, lon, 6)
    expected = [cells.cells.index(geohash_encode(a, b, 6)) for a, b in zip(lat, lon, strict=True)]
    cells.encode(lat[:2], lon[:2])  # two points remembered
    assert cells.encode(lat, lon).tolist() == expected  # four distinct points: more than the memo holds
    assert cells.encode(lat[::-1], lon[::-1]).tolist() == expected[::-1]


def test_pair_codes_only_cover_real_known_events_up_to_the_query():
    items, ts, lat, lon = history()
    rows, cols = np.array([0, 1, 1]), np.array([4, 4, 1])
    pairs = pair_codes(items, ts, lat, lon, rows, cols, CFG)
    expected_valid = np.array(
        [[0, 0, 1, 1, 1], [1, 1, 0, 1, 1], [1, 1, 0, 0, 0]],
        dtype=bool,
    )
    np.testing.assert_array_equal(pairs["valid"], expected_valid)
    for name in ("recency", "hour_diff", "day_diff", "dist"):
        assert (pairs[name][~expected_valid] == 0).all()
        assert (pairs[name][expected_valid] > 0).all()
    assert pairs["recency"][0, 2] == gap_bucket(7200.0)
    assert pairs["dist"][1, 4] == distance_bucket(0.0)


def test_precomputed_item_distances_equal_the_direct_computation():
    rng = np.random.default_rng(0)
    item_lat, item_lon = rng.uniform(40.5, 40.9, 50), rng.uniform(-74.1, -73.7, 50)
    lat = rng.uniform(40.5, 40.9, 30).astype(np.float32)
    lon = rng.uniform(-74.1, -73.7, 30).astype(np.float32)
    picks = rng.integers(0, 30, 12)
    direct = item_distance_codes(lat[picks], lon[picks], item_lat, item_lon, CFG)
    table = item_distances(lat, lon, item_lat, item_lon, CFG)
    assert isinstance(table, ItemDistanceTable)
    np.testing.assert_array_equal(table.lookup(lat[picks], lon[picks]), direct)
    # 30 positions x 50 items exceed a 1,000-byte budget: a bounded memo instead, with the same codes.
    memo = item_distances(lat, lon, item_lat, item_lon, CFG, budget_bytes=1000)
    assert isinstance(memo, ItemDistanceMemo) and memo.limit == 20
    np.testing.assert_array_equal(memo.lookup(lat[picks], lon[picks]), direct)
