"""Sliding look-back windows over a user's event times.

Semantics (exact, and shared by stream and trainer): an event at time ``t`` is in window ``w``
"as of" time ``T`` iff ``T - w.size_s < t <= T``. The lower edge is open so that a 1 h window
as of 12:00 holds 11:00 < t <= 12:00, and consecutive hours never both count an event.
Times are unix seconds (event time, never wall clock).
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass

_NAME = re.compile(r"^[a-z0-9][a-z0-9_]{0,15}$")


@dataclass(frozen=True, slots=True)
class SlidingWindow:
    """A named look-back window; the name becomes part of feature names (e.g. ``count_1h``)."""

    name: str
    size_s: float

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"window name {self.name!r} must match {_NAME.pattern}")
        if isinstance(self.size_s, bool) or not isinstance(self.size_s, int | float):
            raise TypeError(f"window size must be a number, got {type(self.size_s).__name__}")
        if not self.size_s > 0 or self.size_s == float("inf"):
            raise ValueError(f"window size must be positive and finite, got {self.size_s}")


DEFAULT_WINDOWS: tuple[SlidingWindow, ...] = (
    SlidingWindow("10m", 600.0),
    SlidingWindow("1h", 3600.0),
    SlidingWindow("24h", 86400.0),
)


def window_bounds(ts_sorted: Sequence[float], as_of: float, window: SlidingWindow) -> tuple[int, int]:
    """Slice ``[lo, hi)`` of ``ts_sorted`` (ascending) that lies in ``window`` as of ``as_of``."""
    hi = bisect_right(ts_sorted, as_of)
    lo = bisect_right(ts_sorted, as_of - window.size_s, 0, hi)
    return lo, hi


def count_in_window(ts_sorted: Sequence[float], as_of: float, window: SlidingWindow) -> int:
    lo, hi = window_bounds(ts_sorted, as_of, window)
    return hi - lo


def distinct_items_in_window(
    ts_sorted: Sequence[float], items: Sequence[str], as_of: float, window: SlidingWindow
) -> int:
    """Distinct ``items[i]`` over the events in the window; ``items`` is parallel to ``ts_sorted``."""
    if len(items) != len(ts_sorted):
        raise ValueError("items must be parallel to ts_sorted")
    lo, hi = window_bounds(ts_sorted, as_of, window)
    return len(set(items[lo:hi]))
