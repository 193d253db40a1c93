from __future__ import annotations

import json

from schemas.csv_source import ColumnMapping
from schemas.events import ClickEvent
from streams.commands import SAMPLE_DATA
from streams.settings import StreamSettings
from tests.benchmarks.workload import Workload


def test_payloads_are_valid_clicks_with_the_phase_prefix():
    workload = Workload(SAMPLE_DATA, limit=50)
    payloads = workload.payloads(50, "run1")
    events = [ClickEvent.from_wire(p.value) for p in payloads]
    assert all(e.user_id.startswith("run1-") and e.event_id.startswith("run1:") for e in events)
    assert [p.key for p in payloads] == [e.user_id.encode() for e in events]
    assert len({e.event_id for e in events}) == 50


def test_a_longer_run_replays_the_file_later_in_event_time_with_new_ids():
    workload = Workload(SAMPLE_DATA, limit=10)
    events = [ClickEvent.from_wire(p.value) for p in workload.payloads(25, "r")]
    assert len({e.event_id for e in events}) == 25
    first, replayed = events[3], events[13]
    assert replayed.user_id == first.user_id and replayed.item_id == first.item_id
    assert replayed.timestamp > events[9].timestamp
    assert json.loads(workload.payloads(1, "x")[0].value)["event_id"] == "x:" + workload.events[0]["event_id"]


def test_history_lengths_follow_the_streams_buffer():
    workload = Workload(SAMPLE_DATA, limit=2000)
    plain = StreamSettings(history_retention_s=1e12, history_max_events=10_000)
    counts = workload.history_lengths(2000, 10_000, plain)
    seen: dict[str, set] = {}  # every earlier event of the user, a copy (same item and time) once
    expected = []
    for e in workload.events:
        seen.setdefault(e["user_id"], set()).add((e["item_id"], e["event_time"]))
        expected.append(len(seen[e["user_id"]]))
    assert counts == expected
    assert max(workload.history_lengths(2000, 100, plain)) == min(100, max(counts))
    short = workload.history_lengths(2000, 10_000, StreamSettings(history_retention_s=86460.0, allowed_lateness_s=60.0))
    assert all(s <= c for s, c in zip(short, counts, strict=True)) and sum(short) < sum(counts)


def test_a_file_with_other_column_names_replays_the_same_events_through_a_mapping(renamed_checkins):
    path, columns = renamed_checkins

    def without_ids(events):  # ids derive from the file's name
        return [{k: v for k, v in e.items() if k != "event_id"} for e in events]

    expected = without_ids(Workload(SAMPLE_DATA, limit=300).events)
    assert without_ids(Workload(path, ColumnMapping.parse(columns)).events) == expected
