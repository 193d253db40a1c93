import numpy as np
import pytest

from features.geo import geohash_encode
from features.sequence import (
    distance_bucket,
    distance_bucket_edges,
    gap_bucket,
    gap_bucket_edges,
    geohash_cells,
    hour_of_week,
)

MONDAY = 1333324800.0  # 2012-04-02 00:00 UTC


def test_gap_bucket_edges_are_log_spaced():
    edges = gap_bucket_edges(32)
    assert len(edges) == 30
    assert edges[0] == pytest.approx(60.0)
    assert edges[-1] == pytest.approx(30 * 86400.0)
    ratios = edges[1:] / edges[:-1]
    assert np.allclose(ratios, ratios[0])


def test_gap_bucket_ranges_and_padding():
    x = np.array([-1.0, np.nan, np.inf, 0.0, 59.9, 60.0, 1e4, 30 * 86400.0 - 1, 30 * 86400.0, 1e12])
    b = gap_bucket(x, 32)
    assert b.dtype == np.int64
    assert b.tolist()[:5] == [0, 0, 0, 1, 1]
    assert b[5] == 2
    assert 2 < b[6] < 30
    assert b[7] == 30
    assert b[8] == b[9] == 31


def test_gap_bucket_is_monotonic_and_in_range():
    x = np.geomspace(1e-3, 1e9, 2000)
    b = gap_bucket(x, 16)
    assert np.all(np.diff(b) >= 0)
    assert b.min() == 1 and b.max() == 15


def test_gap_bucket_matches_documented_edges():
    edges = gap_bucket_edges(8)
    for k in range(2, 7):
        assert gap_bucket(np.array([edges[k - 2]]), 8)[0] == k
        assert gap_bucket(np.array([np.nextafter(edges[k - 1], 0)]), 8)[0] == k


def test_distance_bucket():
    edges = distance_bucket_edges(32)
    assert edges[0] == pytest.approx(0.05) and edges[-1] == pytest.approx(500.0)
    b = distance_bucket(np.array([-1.0, 0.0, 0.05, 3974.0]), 32)
    assert b.tolist() == [0, 1, 2, 31]


def test_too_few_buckets_rejected():
    with pytest.raises(ValueError):
        gap_bucket(np.array([1.0]), 3)


def test_hour_of_week():
    ts = np.array([MONDAY, MONDAY + 3599, MONDAY + 3600, MONDAY + 7 * 86400 - 1, MONDAY + 7 * 86400, MONDAY - 1, 0.0])
    # 1970-01-01 00:00 was a Thursday: 3 * 24 hours after Monday 00:00.
    assert hour_of_week(ts).tolist() == [0, 0, 1, 167, 0, 167, 72]


def test_geohash_cells_matches_scalar():
    lats = np.array([40.7, -33.9, 90.0])
    lons = np.array([-74.0, 151.2, 180.0])
    assert geohash_cells(lats, lons, 5) == [geohash_encode(a, b, 5) for a, b in zip(lats, lons, strict=True)]
    with pytest.raises(ValueError):
        geohash_cells([1.0], [1.0, 2.0], 5)
