import math
from datetime import UTC, datetime

import pytest

from features.compute import FEATURE_FIELDS, MIN_SPEED_GAP_S, compute_features, feature_fields
from features.geo import geohash_encode, haversine_km, radius_of_gyration_km
from features.history import Visit
from features.windows import SlidingWindow

# Monday 2012-04-02 00:00 UTC.
MONDAY = datetime(2012, 4, 2, tzinfo=UTC).timestamp()


def v(event_id: str, ts: float, item: str = "p", lat: float = 40.70, lon: float = -74.00) -> Visit:
    return Visit(event_id, ts, item, lat, lon)


def test_feature_fields_order_and_types():
    names = [name for name, _ in FEATURE_FIELDS]
    assert names[:6] == [
        "count_10m",
        "count_1h",
        "count_24h",
        "distinct_items_10m",
        "distinct_items_1h",
        "distinct_items_24h",
    ]
    assert len(names) == len(set(names)) == 17
    assert dict(FEATURE_FIELDS)["geohash6"] is str
    assert dict(FEATURE_FIELDS)["count_1h"] is int


def test_first_event_has_missing_markers_and_all_fields():
    at = v("a", MONDAY + 6 * 3600)
    f = compute_features([], at)
    assert list(f) == [name for name, _ in FEATURE_FIELDS]
    for name, typ in FEATURE_FIELDS:
        assert isinstance(f[name], typ), name
    assert f["count_10m"] == f["count_24h"] == 1
    assert f["distinct_items_24h"] == 1
    assert f["seconds_since_prev"] == f["mean_gap_s"] == -1.0
    assert f["dist_prev_km"] == f["speed_prev_kmh"] == -1.0
    assert f["dist_centroid_km"] == pytest.approx(0.0, abs=1e-9)
    assert f["radius_gyration_km"] == pytest.approx(0.0, abs=1e-9)
    assert f["geohash6"] == geohash_encode(40.70, -74.00, 6)


def test_same_result_whether_or_not_at_is_in_visits():
    history = [v("a", MONDAY), v("b", MONDAY + 100, "q"), v("c", MONDAY + 200, "r", 40.8, -73.9)]
    assert compute_features(history, history[-1]) == compute_features(history[:-1], history[-1])


def test_window_counts_with_exact_edges():
    at_ts = MONDAY + 86400 * 2
    history = [
        v("day_edge", at_ts - 86400, "i0"),  # exactly T - 24h: outside every window
        v("d", at_ts - 86399, "i1"),
        v("h_edge", at_ts - 3600, "i2"),  # exactly T - 1h: outside 1h, inside 24h
        v("h", at_ts - 3599, "i2"),
        v("m_edge", at_ts - 600, "i3"),
        v("m", at_ts - 599, "i3"),
    ]
    at = v("now", at_ts, "i3")
    f = compute_features(history, at)
    assert (f["count_10m"], f["count_1h"], f["count_24h"]) == (2, 4, 6)
    assert (f["distinct_items_10m"], f["distinct_items_1h"], f["distinct_items_24h"]) == (1, 2, 3)
    assert f["seconds_since_prev"] == 599.0
    assert f["mean_gap_s"] == pytest.approx(86399 / 5)


def test_events_tied_at_a_window_edge_are_all_out_or_all_in():
    at_ts = MONDAY + 86400
    history = [v("e1", at_ts - 3600, "a"), v("e2", at_ts - 3600, "b"), v("n1", at_ts, "c")]
    f = compute_features(history, v("n2", at_ts, "d"))
    assert (f["count_1h"], f["distinct_items_1h"], f["count_24h"]) == (2, 2, 4)


def test_only_the_past_counts():
    history = [v("a", MONDAY), v("b", MONDAY + 60), v("future", MONDAY + 120, "x", 0.0, 0.0)]
    f = compute_features(history, history[1])
    assert f["count_24h"] == 2
    assert f["distinct_items_24h"] == 1
    assert f["radius_gyration_km"] == pytest.approx(0.0, abs=1e-9)


def test_previous_event_older_than_every_window():
    history = [v("a", MONDAY - 60, lat=39.0), v("b", MONDAY, lat=40.0)]  # the newer of two old visits is the previous
    at = v("c", MONDAY + 3 * 86400, lat=41.0)
    f = compute_features(history, at)
    assert f["count_24h"] == 1
    assert f["seconds_since_prev"] == 3 * 86400.0
    assert f["dist_prev_km"] == pytest.approx(haversine_km(40.0, -74.0, 41.0, -74.0))
    assert f["mean_gap_s"] == -1.0


def test_distance_and_speed_with_zero_gap_guard():
    a = v("a", MONDAY, lat=40.70, lon=-74.00)
    b = v("b", MONDAY + 1800, lat=40.80, lon=-74.00)
    f = compute_features([a], b)
    d = haversine_km(40.70, -74.00, 40.80, -74.00)
    assert f["dist_prev_km"] == pytest.approx(d)
    assert f["speed_prev_kmh"] == pytest.approx(d / 0.5)
    same_minute = v("c", MONDAY, lat=40.80, lon=-74.00)
    g = compute_features([a], same_minute)
    assert math.isfinite(g["speed_prev_kmh"])
    assert g["speed_prev_kmh"] == pytest.approx(d / (MIN_SPEED_GAP_S / 3600.0))


def test_geo_features_over_24h_window():
    lats = [40.70, 40.72, 40.90]  # uneven: the centroid is neither the previous point nor the middle one
    history = [v("a", MONDAY, lat=lats[0]), v("b", MONDAY + 60, lat=lats[1])]
    at = v("c", MONDAY + 120, lat=lats[2])
    f = compute_features(history, at)
    assert f["radius_gyration_km"] == pytest.approx(radius_of_gyration_km(lats, [-74.0] * 3))
    # On one meridian the spherical centroid's latitude is the angle of the summed unit vectors.
    rad = [math.radians(lat) for lat in lats]
    center = math.degrees(math.atan2(sum(map(math.sin, rad)), sum(map(math.cos, rad))))
    assert f["dist_centroid_km"] == pytest.approx(haversine_km(center, -74.0, 40.90, -74.0), rel=1e-6)


def test_the_centroid_of_places_across_the_antimeridian_is_on_it():
    """Averaged as degrees, longitudes 179.9 and -179.9 would put the centroid a third of the world away."""
    history = [v("a", MONDAY, lat=0.0, lon=179.9), v("b", MONDAY + 60, lat=0.0, lon=-179.9)]
    f = compute_features(history, v("c", MONDAY + 120, lat=0.0, lon=180.0))
    assert f["dist_centroid_km"] == pytest.approx(0.0, abs=1e-6)


def test_cyclic_time_features_utc():
    f = compute_features([], v("a", MONDAY))  # Monday 00:00
    assert (f["hour_sin"], f["hour_cos"]) == pytest.approx((0.0, 1.0))
    assert (f["dow_sin"], f["dow_cos"]) == pytest.approx((0.0, 1.0))
    g = compute_features([], v("b", MONDAY + 6 * 3600))  # 06:00: a quarter of the day
    assert (g["hour_sin"], g["hour_cos"]) == pytest.approx((1.0, 0.0), abs=1e-12)
    h = compute_features([], v("c", MONDAY + 3.5 * 86400))  # Thursday noon: half the week
    assert (h["dow_sin"], h["dow_cos"]) == pytest.approx((0.0, -1.0), abs=1e-12)
    tuesday = compute_features([], v("d", MONDAY + 86400 + 3 * 3600))  # Tuesday 03:00: where the sines are not 0
    assert (tuesday["dow_sin"], tuesday["dow_cos"]) == pytest.approx(
        (math.sin(2 * math.pi * 27 / 168), math.cos(2 * math.pi * 27 / 168)), abs=1e-12
    )
    assert (tuesday["hour_sin"], tuesday["hour_cos"]) == pytest.approx((math.sin(math.pi / 4), math.cos(math.pi / 4)))


def test_custom_windows_name_the_features():
    windows = (SlidingWindow("5m", 300.0), SlidingWindow("2d", 172800.0))
    f = compute_features([v("a", MONDAY)], v("b", MONDAY + 90000), windows)
    assert list(f) == [name for name, _ in feature_fields(windows)]
    assert f["count_5m"] == 1
    assert f["count_2d"] == 2
    assert f["mean_gap_s"] == 90000.0
