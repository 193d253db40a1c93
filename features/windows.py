"""Sliding look-back windows over a user's event times.

Semantics (exact; `features.compute` counts them): an event at time ``t`` is in window ``w``
"as of" time ``T`` iff ``T - w.size_s < t <= T``. The lower edge is open so that a 1 h window
as of 12:00 holds 11:00 < t <= 12:00, and consecutive hours never both count an event.
Times are unix seconds (event time, never wall clock).
"""

from __future__ import annotations

import re
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
LONGEST_WINDOW_S = max(w.size_s for w in DEFAULT_WINDOWS)
