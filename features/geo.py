"""Geographic primitives: great-circle distance, geohash, spherical centroid, radius of gyration.

All functions take degrees and return kilometres; distance/centroid helpers accept scalars or numpy arrays.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import numpy.typing as npt

EARTH_RADIUS_KM = 6371.0088  # IUGG mean radius
GEOHASH_ALPHABET = "0123456789bcdefghjkmnpqrstuvwxyz"

ArrayLike = float | npt.NDArray[np.floating]


def haversine_km(lat1: ArrayLike, lon1: ArrayLike, lat2: ArrayLike, lon2: ArrayLike) -> ArrayLike:
    """Great-circle distance; broadcasts like numpy, returns a float for scalar inputs."""
    if all(isinstance(x, float | int) for x in (lat1, lon1, lat2, lon2)):
        return scalar_haversine_km(lat1, lon1, lat2, lon2)
    phi1, lam1, phi2, lam2 = (np.radians(np.asarray(x, dtype=np.float64)) for x in (lat1, lon1, lat2, lon2))
    a = np.sin((phi2 - phi1) / 2.0) ** 2 + np.cos(phi1) * np.cos(phi2) * np.sin((lam2 - lam1) / 2.0) ** 2
    # Clip: rounding can push `a` a hair above 1 for antipodal points, and arcsin would return NaN.
    d = 2.0 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))
    return float(d) if np.ndim(d) == 0 else d


def scalar_haversine_km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    """`haversine_km` of plain numbers, without its type dispatch: the stream calls it several times an event, and
    plain math is ~10x faster than numpy on scalars."""
    phi1, phi2 = math.radians(lat1), math.radians(lat2)
    a = (
        math.sin((phi2 - phi1) / 2.0) ** 2
        + math.cos(phi1) * math.cos(phi2) * math.sin(math.radians(lon2 - lon1) / 2.0) ** 2
    )
    return 2.0 * EARTH_RADIUS_KM * math.asin(math.sqrt(min(max(a, 0.0), 1.0)))


def geohash_encode(lat: float, lon: float, precision: int = 6) -> str:
    """Standard base32 geohash by interval bisection (a value on a midpoint goes to the upper half).

    The closed ranges are handled: latitude 90 and longitude 180 fall in the last cell, not outside it.
    """
    # Check-ins repeat the coordinates of a few thousand places: the stream encodes each event's point, ~10 µs by
    # bisection and ~0.3 µs from the memo. Keys are plain floats, so a float32 point and its float64 value (equal,
    # hence one key) get the cell of the float64 value whichever came first.
    return _geohash(float(lat), float(lon), int(precision))


@functools.lru_cache(maxsize=1 << 16)  # bounded: 65,536 points, ~10 MB
def _geohash(lat: float, lon: float, precision: int) -> str:
    if not -90.0 <= lat <= 90.0 or not -180.0 <= lon <= 180.0:
        raise ValueError(f"coordinates out of range: lat={lat}, lon={lon}")
    if precision < 1:
        raise ValueError("precision must be >= 1")
    lat_lo, lat_hi = -90.0, 90.0
    lon_lo, lon_hi = -180.0, 180.0
    chars = []
    even_bit = True  # bits alternate, longitude first
    char_bits = 0
    n_bits = 0
    while len(chars) < precision:
        if even_bit:
            mid = (lon_lo + lon_hi) / 2.0
            if lon >= mid:
                char_bits = (char_bits << 1) | 1
                lon_lo = mid
            else:
                char_bits <<= 1
                lon_hi = mid
        else:
            mid = (lat_lo + lat_hi) / 2.0
            if lat >= mid:
                char_bits = (char_bits << 1) | 1
                lat_lo = mid
            else:
                char_bits <<= 1
                lat_hi = mid
        even_bit = not even_bit
        n_bits += 1
        if n_bits == 5:
            chars.append(GEOHASH_ALPHABET[char_bits])
            char_bits = 0
            n_bits = 0
    return "".join(chars)


# Below this many points plain math beats numpy's per-call overhead (the stream's windows hold a few events).
SMALL_INPUT = 64


def centroid(lats: npt.ArrayLike, lons: npt.ArrayLike) -> tuple[float, float]:
    """Spherical mean: average the points' unit vectors and project back.

    Unlike averaging degrees, points at lon 179 and -179 give a centroid near 180, not 0.
    If the vectors cancel out (e.g. two antipodal points) there is no meaningful centre and the
    result is whatever direction the rounding residue points to.
    """
    if len(lats) == 0:
        raise ValueError("centroid of no points")
    if len(lats) <= SMALL_INPUT:
        x = y = z = 0.0
        for lat, lon in zip(lats, lons, strict=True):
            phi, lam = math.radians(lat), math.radians(lon)
            cos_phi = math.cos(phi)
            x += cos_phi * math.cos(lam)
            y += cos_phi * math.sin(lam)
            z += math.sin(phi)
        n = len(lats)
        x, y, z = x / n, y / n, z / n
    else:
        phi = np.radians(np.asarray(lats, dtype=np.float64))
        lam = np.radians(np.asarray(lons, dtype=np.float64))
        cos_phi = np.cos(phi)
        x = float(np.mean(cos_phi * np.cos(lam)))
        y = float(np.mean(cos_phi * np.sin(lam)))
        z = float(np.mean(np.sin(phi)))
    return math.degrees(math.atan2(z, math.hypot(x, y))), math.degrees(math.atan2(y, x))


def radius_of_gyration_km(lats: npt.ArrayLike, lons: npt.ArrayLike, center: tuple[float, float] | None = None) -> float:
    """Root-mean-square great-circle distance of the points to ``center`` (default: their centroid)."""
    c_lat, c_lon = centroid(lats, lons) if center is None else center
    if len(lats) <= SMALL_INPUT:
        pairs = zip(lats, lons, strict=True)
        squares = sum(scalar_haversine_km(float(a), float(b), c_lat, c_lon) ** 2 for a, b in pairs)
        return math.sqrt(squares / len(lats))
    d = np.asarray(haversine_km(np.asarray(lats, dtype=np.float64), np.asarray(lons, dtype=np.float64), c_lat, c_lon))
    return float(np.sqrt(np.mean(np.square(d))))
