import math

import numpy as np
import pytest

from features.geo import centroid, geohash_encode, haversine_km, radius_of_gyration_km, scalar_haversine_km

JFK = (40.6413, -73.7781)
LAX = (33.9416, -118.4085)


def test_haversine_known_distance_jfk_lax():
    assert haversine_km(*JFK, *LAX) == pytest.approx(3974, abs=5)


def test_haversine_is_symmetric_and_zero_on_same_point():
    assert haversine_km(*JFK, *LAX) == pytest.approx(haversine_km(*LAX, *JFK))
    assert haversine_km(*JFK, *JFK) == 0.0


def test_haversine_quarter_meridian_and_antipodes():
    # Equator to pole is a quarter of the circumference; antipodes are half, without NaN.
    assert haversine_km(0.0, 0.0, 90.0, 0.0) == pytest.approx(math.pi * 6371.0088 / 2)
    assert haversine_km(0.0, 0.0, 0.0, 180.0) == pytest.approx(math.pi * 6371.0088)


def test_haversine_across_antimeridian_is_short():
    assert haversine_km(0.0, 179.5, 0.0, -179.5) == pytest.approx(111.2, abs=0.2)


def test_haversine_vectorised_matches_scalar():
    lats1 = np.array([JFK[0], 0.0, 51.5])
    lons1 = np.array([JFK[1], 179.5, -0.12])
    lats2 = np.array([LAX[0], 0.0, 48.85])
    lons2 = np.array([LAX[1], -179.5, 2.35])
    vec = haversine_km(lats1, lons1, lats2, lons2)
    assert isinstance(vec, np.ndarray) and vec.shape == (3,)
    for i in range(3):
        assert vec[i] == pytest.approx(haversine_km(lats1[i], lons1[i], lats2[i], lons2[i]))
    # Broadcast one point against many.
    assert haversine_km(lats1, lons1, 0.0, 0.0).shape == (3,)


@pytest.mark.parametrize(
    ("lat", "lon", "precision", "expected"),
    [
        (57.64911, 10.40744, 11, "u4pruydqqvj"),  # the example from the geohash description
        (42.605, -5.603, 5, "ezs42"),
        (40.6413, -73.7781, 6, "dr5x1n"),
        (0.0, 0.0, 6, "s00000"),
        (90.0, 180.0, 6, "zzzzzz"),
        (-90.0, -180.0, 6, "000000"),
        (90.0, -180.0, 4, "bpbp"),
        (-90.0, 180.0, 4, "pbpb"),
    ],
)
def test_geohash_known_values(lat, lon, precision, expected):
    assert geohash_encode(lat, lon, precision) == expected


def test_geohash_prefix_property_and_default_precision():
    full = geohash_encode(40.7128, -74.006, 9)
    assert geohash_encode(40.7128, -74.006) == full[:6]


@pytest.mark.parametrize(
    ("lat", "lon", "precision"), [(91.0, 0.0, 6), (-90.5, 0.0, 6), (0.0, 180.5, 6), (0.0, -180.5, 6), (0.0, 0.0, 0)]
)
def test_geohash_rejects_bad_input(lat, lon, precision):
    with pytest.raises(ValueError):
        geohash_encode(lat, lon, precision)


def test_geohash_memo_is_bounded_and_gives_the_bisections_answers():
    from features.geo import _geohash

    rng = np.random.default_rng(0)
    points = [(float(a), float(b)) for a, b in zip(rng.uniform(-90, 90, 200), rng.uniform(-180, 180, 200), strict=True)]
    for lat, lon in points + points:  # the second pass comes from the memo
        for precision in (5, 6, 9):
            assert geohash_encode(lat, lon, precision) == _geohash.__wrapped__(lat, lon, precision)
    assert _geohash.cache_info().maxsize is not None
    # numpy scalars and ints share the plain floats' entries and answers.
    assert geohash_encode(np.float64(points[0][0]), np.float64(points[0][1]), np.int64(6)) == geohash_encode(
        *points[0], 6
    )
    assert geohash_encode(40, -74) == geohash_encode(40.0, -74.0)
    before = _geohash.cache_info().currsize
    for _ in range(2):  # a refused point is not remembered as an answer
        with pytest.raises(ValueError):
            geohash_encode(95.0, 0.0)
    assert _geohash.cache_info().currsize == before


def test_scalar_haversine_equals_the_vectorised_one():
    rng = np.random.default_rng(1)
    lat1, lon1, lat2, lon2 = (
        rng.uniform(-90, 90, 50),
        rng.uniform(-180, 180, 50),
        rng.uniform(-90, 90, 50),
        rng.uniform(-180, 180, 50),
    )
    vec = haversine_km(lat1, lon1, lat2, lon2)
    for i in range(50):
        assert scalar_haversine_km(float(lat1[i]), float(lon1[i]), float(lat2[i]), float(lon2[i])) == pytest.approx(
            vec[i], rel=1e-12, abs=1e-9
        )


def test_centroid_across_antimeridian_is_not_zero_longitude():
    lat, lon = centroid([10.0, 10.0], [179.0, -179.0])
    assert abs(abs(lon) - 180.0) < 1e-6
    assert lat == pytest.approx(10.0, abs=0.01)


def test_centroid_of_single_point_and_pole():
    assert centroid([40.7], [-74.0]) == pytest.approx((40.7, -74.0))
    lat, _ = centroid([89.0, 89.0, 89.0, 89.0], [0.0, 90.0, 180.0, -90.0])
    assert lat == pytest.approx(90.0)


def test_centroid_rejects_empty():
    with pytest.raises(ValueError):
        centroid([], [])


def test_radius_of_gyration():
    assert radius_of_gyration_km([40.7], [-74.0]) == pytest.approx(0.0, abs=1e-9)
    # Two points: each is half the separation from the midpoint.
    d = haversine_km(0.0, 0.0, 0.0, 2.0)
    assert radius_of_gyration_km([0.0, 0.0], [0.0, 2.0]) == pytest.approx(d / 2, rel=1e-6)
    # Same pair straddling the antimeridian gives the same radius, not half the Earth.
    assert radius_of_gyration_km([0.0, 0.0], [179.0, -179.0]) == pytest.approx(d / 2, rel=1e-6)


def test_radius_of_gyration_with_given_center():
    r = radius_of_gyration_km([0.0, 0.0], [0.0, 2.0], center=(0.0, 0.0))
    assert r == pytest.approx(haversine_km(0.0, 0.0, 0.0, 2.0) / math.sqrt(2), rel=1e-6)


def test_small_inputs_take_plain_math_with_numpys_results():
    """Stream windows hold a few points (plain math); larger inputs use numpy: both give the same answer."""
    import numpy as np

    from features.geo import SMALL_INPUT, centroid, radius_of_gyration_km

    rng = np.random.default_rng(7)
    lats = rng.uniform(-60, 60, SMALL_INPUT + 1)
    lons = rng.uniform(170, 190, SMALL_INPUT + 1)
    lons = np.where(lons > 180, lons - 360, lons)  # straddles the antimeridian
    for n in (1, 2, 5, SMALL_INPUT):
        small = (lats[:n].tolist(), lons[:n].tolist())
        # Repeating every point keeps the centroid and radius; more than SMALL_INPUT points take the numpy path.
        repeated = (np.tile(lats[:n], SMALL_INPUT + 1), np.tile(lons[:n], SMALL_INPUT + 1))
        assert np.allclose(centroid(*small), centroid(*repeated), rtol=0, atol=1e-9)
        assert radius_of_gyration_km(*small) == pytest.approx(radius_of_gyration_km(*repeated), rel=1e-9, abs=1e-9)
