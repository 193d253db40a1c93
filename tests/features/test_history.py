import json

import pytest

from features.compute import MISSING, compute_features
from features.history import AddOutcome, NewerStateError, UserHistory, Visit


def visit(event_id: str, ts: float, item: str = "p", lat: float = 40.7, lon: float = -74.0) -> Visit:
    return Visit(event_id, ts, item, lat, lon)


def ids(history: UserHistory) -> list[str]:
    return [v.event_id for v in history.visits]


def test_visit_is_frozen_with_slots():
    v = visit("a", 1.0)
    with pytest.raises(AttributeError):
        v.ts = 2.0
    assert not hasattr(v, "__dict__")


def test_in_order_adds_and_last_event_ts():
    h = UserHistory()
    assert h.last_event_ts is None
    for i in range(3):
        assert h.add(visit(f"e{i}", 100.0 * i)) is AddOutcome.ADDED
    assert ids(h) == ["e0", "e1", "e2"]
    assert h.last_event_ts == 200.0
    assert len(h) == 3


def test_duplicate_event_id_is_refused_even_with_other_fields():
    h = UserHistory()
    h.add(visit("a", 10.0))
    assert h.add(visit("a", 10.0)) is AddOutcome.DUPLICATE
    assert h.add(visit("a", 20.0, item="other")) is AddOutcome.DUPLICATE
    assert ids(h) == ["a"]


def test_a_copy_under_another_id_same_item_and_time_is_a_duplicate():
    h = UserHistory()
    h.add(visit("a", 10.0, item="cafe"))
    assert h.add(visit("a-resent", 10.0, item="cafe")) is AddOutcome.DUPLICATE  # the trainer drops it too
    assert h.add(visit("b", 10.0, item="bar")) is AddOutcome.ADDED  # another place at the same second
    assert h.add(visit("c", 11.0, item="cafe")) is AddOutcome.ADDED
    assert ids(h) == ["a", "b", "c"]


def test_out_of_order_within_lateness_is_inserted_in_time_order():
    h = UserHistory(allowed_lateness_s=100.0, retention_s=1000.0)
    h.add(visit("a", 1000.0))
    h.add(visit("c", 1100.0))
    assert h.add(visit("b", 1050.0)) is AddOutcome.ADDED
    assert ids(h) == ["a", "b", "c"]
    # Exactly at the lateness bound is still accepted.
    assert h.add(visit("z", 1000.0, item="q")) is AddOutcome.ADDED
    assert ids(h) == ["a", "z", "b", "c"]  # after the retained event with the same time
    assert h.last_event_ts == 1100.0


@pytest.mark.parametrize("arrival", [[0, 1, 2], [2, 1, 0], [1, 2, 0], [2, 0, 1]])
def test_events_of_the_same_time_keep_their_source_order_whatever_order_they_arrive_in(arrival):
    # A worker that takes a partition over can be handed a later click before an earlier one; the history (and so
    # the user's newest event, whose features the online row holds) must not depend on it.
    sent = [(visit("x", 50.0, "q"), 7), (visit("y", 50.0, "r"), 8), (visit("z", 50.0, "s"), 9)]
    h = UserHistory()
    h.add(visit("a", 10.0), 3)
    h.add(visit("b", 60.0), 12)
    for i in arrival:
        assert h.add(*sent[i]) is AddOutcome.ADDED
    assert ids(h) == ["a", "x", "y", "z", "b"]
    assert [h.count_upto(*s) for s in sent] == [2, 3, 4]  # each one's history: itself and what came before it
    state = h.to_state()
    # What code before offsets reads, so that a rollback keeps the histories: version 1, five fields a visit.
    assert state["v"] == 1 and {len(v) for v in state["visits"]} == {5} and state["offsets"] == [3, 7, 8, 9, 12]
    restored = UserHistory.from_state(json.loads(json.dumps(state)))
    assert restored.visits == h.visits
    assert restored.add(visit("w", 50.0, "t"), 8) is AddOutcome.ADDED  # an equal offset: after, by arrival
    assert ids(restored) == ["a", "x", "y", "w", "z", "b"]


def test_a_full_history_refuses_a_tie_of_its_oldest_event_sent_before_it():
    # Inserted first, the count cap would evict it at once: it is too late, as an older event would be.
    h = UserHistory(max_events=2)
    h.add(visit("b", 10.0, "x"), 5)
    h.add(visit("c", 20.0, "y"), 6)
    assert h.add(visit("a", 10.0, "z"), 4) is AddOutcome.TOO_LATE
    assert h.count_upto(visit("a", 10.0, "z"), 4) == 0
    assert h.add(visit("a2", 10.0, "w"), 5) is AddOutcome.ADDED  # after the tie of an equal offset: kept, oldest goes
    assert ids(h) == ["a2", "c"]


def test_a_state_saves_the_offsets_of_the_visits_a_new_event_can_still_tie_with():
    h = UserHistory(allowed_lateness_s=60.0)
    for i, ts in enumerate([0.0, 40.0, 100.0, 100.0, 130.0]):
        h.add(visit(f"e{i}", ts, f"p{i}"), 10 + i)
    state = h.to_state()
    assert state["offsets"] == [12, 13, 14]  # from newest - lateness (70) on; older events are refused anyway
    restored = UserHistory.from_state(json.loads(json.dumps(state)), allowed_lateness_s=60.0)
    assert restored.add(visit("x", 100.0, "q"), 12) is AddOutcome.ADDED
    assert ids(restored) == ["e0", "e1", "e2", "x", "e3", "e4"]
    assert restored.to_state()["offsets"] == [12, 12, 13, 14]


def test_a_state_saves_the_offset_of_a_visit_exactly_at_the_lateness_bound():
    h = UserHistory(allowed_lateness_s=60.0)
    for i, ts in enumerate([10.0, 70.0, 130.0]):
        h.add(visit(f"e{i}", ts, f"p{i}"), 10 + i)
    assert h.to_state()["offsets"] == [11, 12]  # 70 = 130 - 60 still accepts a tie
    restored = UserHistory.from_state(h.to_state(), allowed_lateness_s=60.0)
    assert restored.add(visit("x", 70.0, "q"), 10) is AddOutcome.ADDED
    assert ids(restored) == ["e0", "x", "e1", "e2"]  # sent before e1


def test_a_state_saved_without_offsets_keeps_its_ties_in_saved_order():
    state = {"v": 1, "visits": [["a", 10.0, "x", 3.0, 4.0], ["b", 10.0, "y", 1.0, 2.0]]}  # as code before offsets saved
    restored = UserHistory.from_state(state)
    assert ids(restored) == ["a", "b"]
    assert restored.add(visit("c", 10.0, "z"), 9) is AddOutcome.ADDED
    assert ids(restored) == ["a", "b", "c"]  # after the ties whose offsets were not saved
    assert restored.to_state()["offsets"] == [0, 0, 9]


def test_too_late_event_is_refused_and_state_unchanged():
    h = UserHistory(allowed_lateness_s=100.0, retention_s=1000.0)
    h.add(visit("a", 1000.0))
    h.add(visit("b", 2000.0))
    assert h.add(visit("old", 1899.0)) is AddOutcome.TOO_LATE
    assert ids(h) == ["a", "b"]


def test_eviction_by_retention():
    h = UserHistory(allowed_lateness_s=60.0, retention_s=100.0)
    h.add(visit("a", 0.0), 1)
    h.add(visit("b", 50.0), 2)
    h.add(visit("c", 100.0), 3)  # cutoff 0: "a" at exactly newest - retention stays
    assert ids(h) == ["a", "b", "c"]
    h.add(visit("d", 100.5), 4)  # cutoff 0.5: "a" is older, but the newest such event stays
    assert ids(h) == ["a", "b", "c", "d"]
    h.add(visit("e", 151.0), 5)  # cutoff 51: "b" stays in its place
    assert ids(h) == ["b", "c", "d", "e"]
    assert h.to_state()["offsets"] == [3, 4, 5]  # those within the lateness of the newest, evicted with their visits
    # Dedupe memory is bounded too: the evicted id is forgotten (and is too late anyway).
    assert h.add(visit("a", 0.0)) is AddOutcome.TOO_LATE


def test_the_previous_event_outlives_retention():
    # A user back after longer than the retention still has a previous event: its gap, distance and speed.
    h = UserHistory(allowed_lateness_s=10.0, retention_s=100.0)
    h.add(visit("a", 0.0, lat=40.70, lon=-74.00))
    h.add(visit("b", 500.0, lat=40.71, lon=-74.00))
    assert ids(h) == ["a", "b"]
    full = [visit("a", 0.0, lat=40.70, lon=-74.00), visit("b", 500.0, lat=40.71, lon=-74.00)]
    for name in ("seconds_since_prev", "dist_prev_km", "speed_prev_kmh"):
        assert compute_features(h.visits, h.visits[-1])[name] == compute_features(full, full[-1])[name] != MISSING


def test_eviction_by_count_keeps_newest():
    h = UserHistory(allowed_lateness_s=1000.0, retention_s=10_000.0, max_events=3)
    for i in range(10):
        h.add(visit(f"e{i}", float(i)), 100 + i)
        assert len(h) <= 3
    assert ids(h) == ["e7", "e8", "e9"]
    # A late event older than everything in a full buffer would be evicted at once: refused.
    assert h.add(visit("late", 6.5), 120) is AddOutcome.TOO_LATE
    # A late one that fits pushes out the oldest.
    assert h.add(visit("mid", 7.5), 121) is AddOutcome.ADDED
    assert ids(h) == ["mid", "e8", "e9"]
    assert h.to_state()["offsets"] == [121, 108, 109]


def test_eviction_bounds_under_long_stream():
    h = UserHistory(allowed_lateness_s=60.0, retention_s=3600.0, max_events=50)
    for i in range(5000):
        h.add(visit(f"e{i}", 30.0 * i))
        assert len(h) <= 50
        assert all(v.ts >= h.last_event_ts - 3600.0 for v in h.visits[1:])


@pytest.mark.parametrize(
    "kwargs",
    [{"allowed_lateness_s": -1.0}, {"allowed_lateness_s": 100.0, "retention_s": 50.0}, {"max_events": 0}],
)
def test_invalid_limits(kwargs):
    with pytest.raises(ValueError):
        UserHistory(**kwargs)


def test_state_round_trips_through_json():
    h = UserHistory(allowed_lateness_s=100.0, retention_s=1000.0, max_events=10)
    h.add(visit("a", 1000.0, "x", 1.5, 2.5))
    h.add(visit("c", 1100.0, "y"))
    h.add(visit("b", 1050.0, "z"))
    state = json.loads(json.dumps(h.to_state()))
    assert all(isinstance(row, list) for row in state["visits"])
    restored = UserHistory.from_state(state, allowed_lateness_s=100.0, retention_s=1000.0, max_events=10)
    assert restored.visits == h.visits
    assert restored.last_event_ts == 1100.0
    # Dedupe and lateness still work after a restore.
    assert restored.add(visit("a", 1000.0)) is AddOutcome.DUPLICATE
    assert restored.add(visit("old", 900.0)) is AddOutcome.TOO_LATE


def test_from_state_applies_tighter_limits_and_rejects_unknown_version():
    h = UserHistory()
    for i in range(5):
        h.add(visit(f"e{i}", float(i)))
    restored = UserHistory.from_state(h.to_state(), max_events=2)
    assert ids(restored) == ["e3", "e4"]
    with pytest.raises(ValueError, match="unsupported history state version"):
        UserHistory.from_state({"v": 0, "visits": []})
    with pytest.raises(NewerStateError, match="newer code"):  # not a ValueError: the stream must not start it afresh
        UserHistory.from_state({"v": 999, "visits": []})


def test_from_state_sorts_an_unsorted_state_into_visits():
    state = {"v": 1, "visits": [["b", 20.0, "y", 1.0, 2.0], ["a", 10.0, "x", 3.0, 4.0]]}
    restored = UserHistory.from_state(state)
    assert ids(restored) == ["a", "b"]
    visits = [["c", 20.0, "z", 0.0, 0.0], ["b", 20.0, "y", 1.0, 2.0], ["a", 10.0, "x", 3.0, 4.0]]
    restored = UserHistory.from_state({"v": 1, "visits": visits, "offsets": [7, 6, 5]})
    assert ids(restored) == ["a", "b", "c"]  # ties by offset
    assert restored.to_state()["offsets"] == [5, 6, 7]
    restored = UserHistory.from_state(state)
    assert all(type(v) is Visit for v in restored.visits)
    assert restored.visits[0].lat == 3.0 and restored.last_event_ts == 20.0
    assert restored.add(visit("b", 20.0)) is AddOutcome.DUPLICATE


@pytest.mark.parametrize("offsets", [[1, 2, 3], [1, "2"], [1, 2.5], [True]])
def test_from_state_refuses_offsets_that_are_not_one_whole_number_per_visit(offsets):
    state = {"v": 1, "visits": [["a", 10.0, "x", 3.0, 4.0], ["b", 20.0, "y", 1.0, 2.0]], "offsets": offsets}
    with pytest.raises(ValueError, match="offsets"):
        UserHistory.from_state(state)


def test_from_state_refuses_a_visit_of_the_wrong_width():
    with pytest.raises(ValueError, match="5 fields"):
        UserHistory.from_state({"v": 1, "visits": [["a", 10.0, "x", 3.0, 4.0], ["b", 20.0, "y"]]})


def test_newest_ts_of_state_reads_saved_state_without_rebuilding():
    history = UserHistory()
    assert UserHistory.newest_ts_of_state(history.to_state()) is None
    history.add(Visit("b", 200.0, "x", 0.0, 0.0))
    history.add(Visit("a", 100.0, "y", 0.0, 0.0))
    assert UserHistory.newest_ts_of_state(json.loads(json.dumps(history.to_state()))) == 200.0
