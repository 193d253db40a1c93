"""Bounded, event-time-ordered buffer of one user's recent visits (the stream's per-user state)."""

from __future__ import annotations

import enum
from bisect import bisect_left, bisect_right
from collections.abc import Sequence
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

from features.windows import LONGEST_WINDOW_S

STATE_VERSION = 1
DEFAULT_ALLOWED_LATENESS_S = 3600.0
# Late events need their own full look-back, so keep the largest window plus the lateness.
DEFAULT_RETENTION_S = LONGEST_WINDOW_S + DEFAULT_ALLOWED_LATENESS_S
DEFAULT_MAX_EVENTS = 512

_id = itemgetter(0)  # Visit.event_id, read by index in C
visit_time = itemgetter(1)  # Visit.ts: the sort and bisection key of every sorted list of visits
_new_tuple = tuple.__new__


class NewerStateError(RuntimeError):
    """A saved state written by newer code (a rollback, a mixed-version rollout): not to be read, nor overwritten."""


# What reading a malformed or older saved state raises (from_state, newest_ts_of_state; JSON decoding's ValueError).
UNREADABLE_STATE = (ValueError, TypeError, KeyError, IndexError, AttributeError)


class Visit(NamedTuple):
    """One event of a user's history. A named tuple: states of up to 128 visits are rebuilt for every user
    of every micro-batch, and a tuple builds ~8x faster than a frozen dataclass."""

    event_id: str
    ts: float  # unix seconds, event time
    item_id: str
    lat: float
    lon: float


class AddOutcome(enum.Enum):
    ADDED = "added"
    DUPLICATE = "duplicate"
    TOO_LATE = "too_late"


class UserHistory:
    """Visits sorted by event time, deduplicated by event_id and by (item, time), bounded in time span and count.

    - An event older than ``newest - allowed_lateness_s`` is refused (TOO_LATE); so is one that the
      ``max_events`` cap would evict at once. Otherwise late events are inserted in time order.
    - Events of the same time keep their source order, the ``offset`` `add` is given (the click's Kafka offset; a
      user's clicks share one partition), as the trainer keeps the file's order that the producer sent: a worker that
      takes a partition over can be handed a later click before the seek back re-reads an earlier one. Ties of an equal
      offset keep arrival order: 0 where none is known (tests, states saved without offsets, and restored visits older
      than the lateness the state was saved under, which no accepted event can tie with). Offsets compare within one
      life of a topic: one deleted and recreated under kept state starts again from 0.
    - Eviction drops events with ``ts < newest - retention_s`` but the newest of them (the previous event of
      the next one: its gap and distance features look past every window), then the oldest beyond
      ``max_events``.
    - Deduplication covers retained events only: an id evicted by the count cap could be re-added.
    """

    __slots__ = ("_ids", "_offsets", "_times", "_visits", "allowed_lateness_s", "max_events", "retention_s")

    def __init__(
        self,
        *,
        allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S,
        retention_s: float = DEFAULT_RETENTION_S,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> None:
        if allowed_lateness_s < 0:
            raise ValueError("allowed_lateness_s must be >= 0")
        if retention_s < allowed_lateness_s:
            # An accepted late event must not be evicted by the same call that accepted it.
            raise ValueError("retention_s must be >= allowed_lateness_s")
        if max_events < 1:
            raise ValueError("max_events must be >= 1")
        self.allowed_lateness_s = float(allowed_lateness_s)
        self.retention_s = float(retention_s)
        self.max_events = int(max_events)
        self._visits: list[Visit] = []
        self._times: list[float] = []  # parallel to _visits, for bisect without a key function
        self._offsets: list[int] = []  # parallel to _visits: the source order of equal times
        self._ids: set[str] = set()

    def __len__(self) -> int:
        return len(self._visits)

    @property
    def visits(self) -> Sequence[Visit]:
        """Retained visits, oldest first (a copy: the buffer changes on every add)."""
        return tuple(self._visits)

    @property
    def last_event_ts(self) -> float | None:
        """Newest event time seen and retained; None for an empty history."""
        return self._times[-1] if self._times else None

    def add(self, visit: Visit, offset: int = 0) -> AddOutcome:
        if visit.event_id in self._ids or self._holds_copy(visit):
            return AddOutcome.DUPLICATE
        i = self.count_upto(visit, offset)
        if self._times:
            if visit.ts < self._times[-1] - self.allowed_lateness_s:
                return AddOutcome.TOO_LATE
            if len(self._times) >= self.max_events and i == 0:  # the count cap would evict it at once
                return AddOutcome.TOO_LATE
        self._times.insert(i, visit.ts)
        self._offsets.insert(i, offset)
        self._visits.insert(i, visit)
        self._ids.add(visit.event_id)
        self._evict()
        return AddOutcome.ADDED

    def count_upto(self, visit: Visit, offset: int = 0) -> int:
        """How many retained visits come at or before ``visit`` (of source ``offset``) in time, then source order: those
        `add` places it after, and so its history; itself included once added."""
        lo, hi = self._ties(visit.ts)
        return hi - sum(o > offset for o in self._offsets[lo:hi])

    def _ties(self, ts: float) -> tuple[int, int]:
        """The index range of the retained visits at time ``ts``."""
        return bisect_left(self._times, ts), bisect_right(self._times, ts)

    def _holds_copy(self, visit: Visit) -> bool:
        """A retained visit to the same item at the same time under another id: a resent copy, which the trainer
        drops too (trainer.data.drop_duplicate_events), so it must not count twice in the stream either."""
        lo, hi = self._ties(visit.ts)
        return any(v.item_id == visit.item_id for v in self._visits[lo:hi])

    def _evict(self) -> None:
        cutoff = self._times[-1] - self.retention_s
        n_old = 0
        while n_old < len(self._times) and self._times[n_old] < cutoff:
            n_old += 1
        n_drop = max(n_old - 1, len(self._times) - self.max_events, 0)
        if n_drop:
            for v in self._visits[:n_drop]:
                self._ids.discard(v.event_id)
            del self._visits[:n_drop]
            del self._times[:n_drop]
            del self._offsets[:n_drop]

    def to_state(self) -> dict[str, Any]:
        """Plain JSON types only (lists, not tuples): RocksDB-backed tables round-trip through JSON.

        The offsets are a key of their own, which code that predates them ignores (a rollback keeps reading the
        visits), and hold only those of the newest visits, from the newest's time less the allowed lateness on: no
        accepted event can tie with an older one (it would be too late, and a too-late event is answered by time
        alone), and every visit's offset would add ~8% to the bytes and ~15% to the rebuild time of each state, for
        every user of every batch."""
        times = self._times
        start = bisect_left(times, times[-1] - self.allowed_lateness_s) if times else 0
        return {"v": STATE_VERSION, "visits": list(map(list, self._visits)), "offsets": self._offsets[start:]}

    @staticmethod
    def newest_ts_of_state(state: dict[str, Any]) -> float | None:
        """Newest event time in a saved state, without rebuilding the buffer (used to expire idle users)."""
        visits = state.get("visits") if state else None
        return float(visits[-1][1]) if visits else None

    @classmethod
    def from_state(
        cls,
        state: dict[str, Any],
        *,
        allowed_lateness_s: float = DEFAULT_ALLOWED_LATENESS_S,
        retention_s: float = DEFAULT_RETENTION_S,
        max_events: int = DEFAULT_MAX_EVENTS,
    ) -> UserHistory:
        version = state.get("v")
        if isinstance(version, int) and version > STATE_VERSION:
            raise NewerStateError(f"history state version {version} comes from newer code than this ({STATE_VERSION})")
        if version != STATE_VERSION:
            raise ValueError(f"unsupported history state version {version!r}")
        history = cls(allowed_lateness_s=allowed_lateness_s, retention_s=retention_s, max_events=max_events)
        # Rebuilt for every user of every batch (~120 visits for a busy user), so in C: `tuple.__new__` makes each
        # saved [id, ts, item, lat, lon] a Visit without namedtuple's Python-level `_make` (half the time).
        saved = state["visits"]
        if set(map(len, saved)) - {len(Visit._fields)}:
            raise ValueError(f"a saved visit does not hold the {len(Visit._fields)} fields of a Visit")
        visits = list(map(_new_tuple, repeat(Visit, len(saved)), saved))
        newest = state.get("offsets") or ()  # those of the newest visits; none saved by code that predates them
        if len(newest) > len(visits) or set(map(type, newest)) - {int}:
            raise ValueError("the saved offsets are not whole numbers of the newest saved visits")
        offsets = [0] * (len(visits) - len(newest)) + list(newest)  # 0: ties keep the order they were saved in
        times = list(map(visit_time, visits))
        if times != sorted(times):  # states are saved sorted; sorting a sorted list is one linear pass
            order = sorted(range(len(visits)), key=lambda i: (times[i], offsets[i]))
            visits, offsets = [visits[i] for i in order], [offsets[i] for i in order]
            times = list(map(visit_time, visits))
        history._visits = visits
        history._times = times
        history._offsets = offsets
        history._ids = set(map(_id, visits))
        if visits:
            history._evict()  # the limits may be tighter than those the state was saved under
        return history
