"""Vectorised encoders for the model's time and space inputs, shared by trainer and Triton model.

Buckets are log-spaced because what matters about a gap or a hop is its order of magnitude.
Bucket 0 is reserved for padding / "no value" (negative, NaN or infinite input):

- ``gap_bucket``: bucket 1 is ``[0, 60 s)``; buckets 2 .. n-2 split ``[60 s, 30 days)`` into
  ``n - 3`` intervals of equal log width; bucket n-1 is ``>= 30 days``.
- ``distance_bucket``: the same layout over ``[0, 0.05 km)``, ``[0.05 km, 500 km)``, ``>= 500 km``.

``gap_bucket_edges`` / ``distance_bucket_edges`` return the ``n - 2`` edges: bucket ``k >= 1``
holds ``edges[k-2] <= x < edges[k-1]`` (with ``edges[-1] = 0`` and ``edges[n-2] = inf``).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

from features.geo import geohash_encode

GAP_MIN_S = 60.0  # the data's time resolution is one minute
GAP_MAX_S = 30 * 86400.0
DIST_MIN_KM = 0.05  # about the accuracy of a check-in's coordinates
DIST_MAX_KM = 500.0
HOURS_PER_WEEK = 168
# 1970-01-01 00:00 UTC was a Thursday: Monday 00:00 is 3 days earlier in the week.
_EPOCH_HOUR_OF_WEEK = 3 * 24


@functools.cache
def _log_edges(low: float, high: float, n_buckets: int) -> npt.NDArray[np.float64]:
    """Cached (read-only): the model encodes every request's history with the same few edge arrays."""
    if n_buckets < 4:
        raise ValueError("n_buckets must be >= 4 (padding, below-range, in-range, above-range)")
    edges = np.geomspace(low, high, n_buckets - 2)
    edges.flags.writeable = False
    return edges


def gap_bucket_edges(n_buckets: int = 32) -> npt.NDArray[np.float64]:
    return _log_edges(GAP_MIN_S, GAP_MAX_S, n_buckets)


def distance_bucket_edges(n_buckets: int = 32) -> npt.NDArray[np.float64]:
    return _log_edges(DIST_MIN_KM, DIST_MAX_KM, n_buckets)


def _bucketize(values: npt.ArrayLike, edges: npt.NDArray[np.float64]) -> npt.NDArray[np.int64]:
    x = np.asarray(values, dtype=np.float64)
    buckets = np.searchsorted(edges, x, side="right").astype(np.int64) + 1
    return np.where(np.isfinite(x) & (x >= 0.0), buckets, 0)


def gap_bucket(seconds: npt.ArrayLike, n_buckets: int = 32) -> npt.NDArray[np.int64]:
    """Time gaps in seconds -> ints in ``0 .. n_buckets-1`` (0 = padding / none)."""
    return _bucketize(seconds, gap_bucket_edges(n_buckets))


def distance_bucket(km: npt.ArrayLike, n_buckets: int = 32) -> npt.NDArray[np.int64]:
    """Distances in km -> ints in ``0 .. n_buckets-1`` (0 = padding / none)."""
    return _bucketize(km, distance_bucket_edges(n_buckets))


def hour_of_week(ts: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """Unix seconds -> UTC hour of the week, Monday 00:00-00:59 = 0 .. Sunday 23:00-23:59 = 167."""
    hours = np.floor_divide(np.asarray(ts, dtype=np.float64), 3600.0).astype(np.int64)
    return (hours + _EPOCH_HOUR_OF_WEEK) % HOURS_PER_WEEK


def geohash_cells(
    lats: Sequence[float] | npt.ArrayLike, lons: Sequence[float] | npt.ArrayLike, precision: int
) -> list[str]:
    """Geohash of each point, e.g. as vocabulary keys for a location embedding."""
    lats = np.asarray(lats, dtype=np.float64)
    lons = np.asarray(lons, dtype=np.float64)
    if lats.shape != lons.shape:
        raise ValueError("lats and lons must have the same shape")
    return [geohash_encode(la, lo, precision) for la, lo in zip(lats.tolist(), lons.tolist(), strict=True)]
