"""Per-event user features, as of the event's own time: the row the stream writes to the online store."""

from __future__ import annotations

import math
from bisect import bisect_right
from collections.abc import Sequence

from features.geo import centroid, geohash_encode, radius_of_gyration_km, scalar_haversine_km
from features.history import Visit, visit_time
from features.windows import DEFAULT_WINDOWS, SlidingWindow

MISSING = -1.0  # numeric features without a value (no previous event, too few events)
GEOHASH_PRECISION = 6
# The data has minute resolution: same-minute check-ins get a 0 s gap. Flooring the gap at one
# minute keeps speed finite and comparable instead of exploding to km/0 h.
MIN_SPEED_GAP_S = 60.0
SECONDS_PER_DAY = 86400.0
# 1970-01-01 was a Thursday: shift so that day 0 of the week is Monday.
_EPOCH_WEEKDAY = 3.0
_TWO_PI = 2.0 * math.pi

FeatureValue = float | int | str


def feature_fields(windows: Sequence[SlidingWindow] = DEFAULT_WINDOWS) -> tuple[tuple[str, type], ...]:
    """Every feature name and Python type in the order the online store schema uses."""
    return (
        *((f"count_{w.name}", int) for w in windows),
        *((f"distinct_items_{w.name}", int) for w in windows),
        ("seconds_since_prev", float),
        ("mean_gap_s", float),
        ("hour_sin", float),
        ("hour_cos", float),
        ("dow_sin", float),
        ("dow_cos", float),
        ("geohash6", str),
        ("dist_prev_km", float),
        ("speed_prev_kmh", float),
        ("dist_centroid_km", float),
        ("radius_gyration_km", float),
    )


FEATURE_FIELDS = feature_fields()


def compute_features(
    visits: Sequence[Visit], at: Visit, windows: Sequence[SlidingWindow] = DEFAULT_WINDOWS
) -> dict[str, FeatureValue]:
    """Features of the user as of ``at.ts`` (see features.windows for the window semantics).

    ``visits`` must be sorted by ``ts`` (UserHistory keeps them so; the trainer sorts per user) and may
    or may not contain ``at``: only visits with ``ts <= at.ts`` count, ``at`` exactly once, as the
    newest. Gap and geo statistics (mean_gap_s, dist_centroid_km, radius_gyration_km) use the largest
    window. Cost: two bisections plus a scan of the largest window, never the whole history.
    """
    if not windows:
        raise ValueError("at least one window is needed")
    longest = max(w.size_s for w in windows)
    hi = bisect_right(visits, at.ts, key=visit_time)
    lo = bisect_right(visits, at.ts - longest, 0, hi, key=visit_time)
    in_window = [v for v in visits[lo:hi] if v.event_id != at.event_id]
    if in_window:
        prev: Visit | None = in_window[-1]
    else:
        # The previous event may be older than every window; `at` itself cannot lie before `lo`.
        prev = visits[lo - 1] if lo > 0 else None
    in_window.append(at)
    times = [v.ts for v in in_window]

    features: dict[str, FeatureValue] = {}
    starts = {w.name: bisect_right(times, at.ts - w.size_s) for w in windows}
    for w in windows:
        features[f"count_{w.name}"] = len(times) - starts[w.name]
    for w in windows:
        features[f"distinct_items_{w.name}"] = len({v.item_id for v in in_window[starts[w.name] :]})

    features["seconds_since_prev"] = at.ts - prev.ts if prev else MISSING
    features["mean_gap_s"] = (times[-1] - times[0]) / (len(times) - 1) if len(times) >= 2 else MISSING

    day_frac = (at.ts % SECONDS_PER_DAY) / SECONDS_PER_DAY
    week_frac = ((at.ts / SECONDS_PER_DAY + _EPOCH_WEEKDAY) % 7.0) / 7.0
    features["hour_sin"] = math.sin(_TWO_PI * day_frac)
    features["hour_cos"] = math.cos(_TWO_PI * day_frac)
    features["dow_sin"] = math.sin(_TWO_PI * week_frac)
    features["dow_cos"] = math.cos(_TWO_PI * week_frac)
    features["geohash6"] = geohash_encode(at.lat, at.lon, GEOHASH_PRECISION)

    if prev:
        dist = scalar_haversine_km(prev.lat, prev.lon, at.lat, at.lon)
        features["dist_prev_km"] = dist
        features["speed_prev_kmh"] = dist / (max(at.ts - prev.ts, MIN_SPEED_GAP_S) / 3600.0)
    else:
        features["dist_prev_km"] = MISSING
        features["speed_prev_kmh"] = MISSING

    lats = [v.lat for v in in_window]
    lons = [v.lon for v in in_window]
    center = centroid(lats, lons)
    features["dist_centroid_km"] = scalar_haversine_km(at.lat, at.lon, *center)
    features["radius_gyration_km"] = radius_of_gyration_km(lats, lons, center)
    return features
