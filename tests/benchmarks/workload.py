"""The clicks a benchmark phase publishes: real check-ins, with ids made unique to the phase.

Every phase gets its own prefix on user and event ids, so what earlier runs left in the topics, the
workers' tables and the online store never counts. A phase starts with empty user histories unless it continues
an earlier phase's users on purpose (the prefill before a throughput run, the latency loads after it).
Payloads are serialised before the clock starts, so the producer is not what gets measured.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from features.history import UserHistory, Visit
from schemas.csv_source import ColumnMapping, iter_click_events, read_events_frame
from streams.settings import StreamSettings


@dataclass(frozen=True)
class Payload:
    event_id: str
    key: bytes
    value: bytes


class Workload:
    """The check-ins of one file, replayable any number of times under fresh id prefixes."""

    def __init__(self, path: Path, mapping: ColumnMapping | None = None, limit: int | None = None) -> None:
        self.path = path
        self.mapping = mapping or ColumnMapping()
        frame = read_events_frame(path, self.mapping, limit=limit)
        if frame.empty:
            raise ValueError(f"{path} holds no usable events")
        self._events = [event.model_dump(mode="json", exclude_none=True) for event in iter_click_events(frame)]
        self._timestamps = frame["ts"].to_list()
        # A longer run than the file replays it again later in event time, so histories stay ordered.
        self._span_s = self._timestamps[-1] - self._timestamps[0] + 86400.0

    def __len__(self) -> int:
        return len(self._events)

    @property
    def events(self) -> list[dict]:
        """The file's events as JSON-ready dicts, in event-time order (do not modify)."""
        return self._events

    def payloads(self, n: int, prefix: str, start: int = 0) -> list[Payload]:
        """Events start .. start+n of the replay, under `prefix` (the same prefix continues the same users)."""
        out = []
        for i in range(start, start + n):
            lap, row = divmod(i, len(self._events))
            event = dict(self._events[row])
            event["user_id"] = f"{prefix}-{event['user_id']}"
            event["event_id"] = f"{prefix}:{event['event_id']}" + (f"~{lap}" if lap else "")
            if lap:
                shifted = self._timestamps[row] + lap * self._span_s
                event["event_time"] = datetime.fromtimestamp(shifted, UTC).isoformat().replace("+00:00", "Z")
            value = json.dumps(event, separators=(",", ":")).encode()
            out.append(Payload(event["event_id"], event["user_id"].encode(), value))
        return out

    def history_lengths(self, n: int, cap: int, stream: StreamSettings, start: int = 0) -> list[int]:
        """Per event start .. start+n of a replay: how many events of its user the model sees, itself included
        (at most cap), replayed through the stream's own per-user buffer (its retention and event cap). A replay
        starts with empty histories, so short runs measure the model on short ones."""
        limits = {
            "allowed_lateness_s": stream.allowed_lateness_s,
            "retention_s": stream.history_retention_s,
            "max_events": stream.history_max_events,
        }
        histories: dict[str, UserHistory] = {}
        out = []
        for i in range(start + n):
            lap, row = divmod(i, len(self._events))
            user = self._events[row]["user_id"]
            history = histories.get(user)
            if history is None:
                history = histories[user] = UserHistory(**limits)
            # The real item: the buffer takes a resent copy (same item and time) for a duplicate.
            history.add(
                Visit(str(i), self._timestamps[row] + lap * self._span_s, self._events[row]["item_id"], 0.0, 0.0)
            )
            if i >= start:
                out.append(min(len(history), cap))
        return out
