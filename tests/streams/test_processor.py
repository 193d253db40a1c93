import asyncio
import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from features.compute import compute_features
from features.history import Visit
from schemas.events import ClickEvent, DeadLetter
from streams.predictor import RequestRefused
from streams.processor import ClickProcessor, broker_time
from streams.retry import Stopping
from streams.settings import StreamSettings
from streams.testing import DictState, FrequencyPredictor, ListSink, messages_from

T0 = datetime(2012, 4, 3, 18, 0, tzinfo=UTC)


def click(event_id: str, user: str, item: str, minutes: float, lat=40.7, lon=-74.0) -> ClickEvent:
    return ClickEvent(
        event_id=event_id,
        user_id=user,
        item_id=item,
        event_time=T0 + timedelta(minutes=minutes),
        latitude=lat,
        longitude=lon,
    )


def run(processor: ClickProcessor, messages):
    return asyncio.run(processor.process(messages))


@pytest.fixture
def parts():
    state = DictState()
    sink, predictor = ListSink(), FrequencyPredictor()
    return state, sink, predictor, ClickProcessor(state, sink, predictor, StreamSettings(allowed_lateness_s=600))


def test_one_prediction_per_event_in_one_model_call(parts):
    state, _, predictor, processor = parts
    events = [click(f"e{i}", f"u{i % 3}", f"i{i % 2}", i) for i in range(9)]
    result = run(processor, messages_from(events))
    assert [p.event_id for p in result.predictions] == [e.event_id for e in events]
    assert predictor.calls == [9]
    assert set(state) == {"u0", "u1", "u2"}


def test_features_are_computed_as_of_each_event(parts):
    _, _, _, processor = parts
    events = [click("a", "u", "x", 0), click("b", "u", "y", 5), click("c", "u", "x", 70)]
    result = run(processor, messages_from(events))
    visits = [Visit(e.event_id, e.timestamp, e.item_id, e.latitude, e.longitude) for e in events]
    for i, prediction in enumerate(result.predictions):
        assert prediction.features == compute_features(visits[: i + 1], visits[i])
    assert result.predictions[2].features["count_1h"] == 1
    assert result.predictions[2].features["count_24h"] == 3


def test_prediction_events_are_valid_events_with_the_explanation_asked_for():
    class Explaining(FrequencyPredictor):
        async def predict(self, histories):
            out = await super().predict(histories)
            # Weight each history event by its position: the newest weighs most.
            return [
                replace(p, attribution=[float(i) for i in range(len(h))]) for p, h in zip(out, histories, strict=True)
            ]

    processor = ClickProcessor(DictState(), ListSink(), Explaining(), StreamSettings())
    events = [click(f"e{i}", "u", f"i{i % 2}", i) for i in range(5)]
    result = run(processor, messages_from(events))
    last = result.predictions[-1].event()  # validated against the schema
    assert (last.event_id, last.user_id, last.model_name) == ("e4", "u", "frequency")
    assert [i.item_id for i in last.items] == ["i0", "i1"] and [i.score for i in last.items] == [3.0, 2.0]
    assert last.features == result.predictions[-1].features
    assert [e["event_id"] for e in last.explanation] == ["e4", "e3", "e2"]
    assert last.event_time == events[-1].event_time and last.received_at <= last.predicted_at
    # The second event's history weighs (0, 1): an event of weight 0 did not move the prediction, so it is not named.
    assert [e["event_id"] for e in result.predictions[1].event().explanation] == ["e1"]


def test_online_store_gets_the_newest_row_per_user_per_batch(parts):
    _, sink, _, processor = parts
    run(processor, messages_from([click("a", "u", "x", 0), click("b", "u", "y", 5), click("c", "v", "x", 1)]))
    rows = {user: ts for user, ts, _ in sink.rows}
    assert rows == {"u": click("b", "u", "y", 5).timestamp, "v": click("c", "v", "x", 1).timestamp}


def test_malformed_events_become_dead_letters_with_reasons(parts):
    _, _, _, processor = parts
    good = click("a", "u", "x", 0)
    bad_lat = json.loads(good.to_wire()) | {"event_id": "b", "latitude": 91.0}
    future = json.loads(good.to_wire()) | {"event_id": "c", "event_time": "2999-01-01T00:00:00Z"}
    overflow = json.loads(good.to_wire()) | {"event_id": "d", "event_time": "9999-12-31T23:00:00-05:00"}
    raws = [b"{not json", json.dumps(bad_lat).encode(), json.dumps(future).encode(), b"\xff\xfe"]
    raws += [json.dumps(overflow).encode(), b"\x00" * 170_000, good]
    result = run(processor, messages_from(raws))
    assert [p.event_id for p in result.predictions] == ["a"]
    letters = result.dead_letters
    assert len(letters) == 6
    assert all(isinstance(d, DeadLetter) for d in letters)
    assert "latitude" in letters[1].error
    assert "future" in letters[2].error
    assert letters[3].payload_encoding == "base64"
    assert "out of range" in letters[4].error
    assert "exceeds" in letters[5].error and letters[5].payload_bytes == 170_000
    assert [d.source_offset for d in letters] == [0, 1, 2, 3, 4, 5]


def test_events_not_keyed_by_their_user_become_dead_letters(parts):
    # Keyed otherwise, a user's events could spread over partitions, each with a history of its own.
    _, _, _, processor = parts
    good = messages_from([click("a", "u", "x", 0)])[0]
    raws = [replace(good, key=None, offset=1), replace(good, key=b"someone-else", offset=2), good]
    result = run(processor, raws)
    assert [p.event_id for p in result.predictions] == ["a"]
    assert [d.source_offset for d in result.dead_letters] == [1, 2]
    assert all("is not the user_id" in d.error for d in result.dead_letters)


def test_duplicates_are_answered_but_not_counted_twice(parts):
    _, _, _, processor = parts
    first = run(processor, messages_from([click("a", "u", "x", 0), click("b", "u", "y", 1)]))
    again = run(processor, messages_from([click("b", "u", "y", 1)]))
    assert again.duplicates == 1
    assert again.predictions[0].features == first.predictions[1].features


def test_a_resent_copy_under_another_id_is_answered_as_its_original(parts):
    _, _, _, processor = parts
    first = run(processor, messages_from([click("a", "u", "x", 0), click("b", "u", "y", 1)]))
    copy = run(processor, messages_from([click("b-resent", "u", "y", 1)]))
    assert copy.duplicates == 1
    assert copy.predictions[0].features == first.predictions[1].features  # not counted twice


def test_late_events_within_lateness_update_windows_and_older_ones_are_counted(parts):
    _, _, _, processor = parts
    run(processor, messages_from([click("a", "u", "x", 0), click("c", "u", "x", 30)]))
    late_ok = run(processor, messages_from([click("b", "u", "y", 25)]))
    assert late_ok.late == 0
    assert late_ok.predictions[0].features["count_1h"] == 2  # a and b, not c (after b)
    after = run(processor, messages_from([click("d", "u", "x", 31)]))
    assert after.predictions[0].features["count_1h"] == 4
    too_late = run(processor, messages_from([click("z", "u", "x", 10)]))  # 21 min behind, lateness 10 min
    assert too_late.late == 1
    assert len(too_late.predictions) == 1


@pytest.mark.parametrize(
    "batches",
    [[["a", "c"], ["b"]], [["a", "c", "b"]], [["a", "c"], ["b"], ["crash"], ["b"]]],
    ids=["later-batch", "same-batch", "replayed-after-a-crash"],
)
def test_a_late_event_rewrites_the_users_row_as_of_the_newest_event(batches):
    """The online row is the newest event's features; a late event changes its windows (count) and its previous
    event (distance), so the row is written again as the offline code computes it from every event in time order.
    After a crash that lost the write (the state is saved before it), the replayed late event writes it again."""
    sink = ListSink()
    processor = ClickProcessor(DictState(), sink, FrequencyPredictor(), StreamSettings(allowed_lateness_s=3600))
    clicks = {
        "a": click("a", "u", "x", 0, lat=40.70),
        "b": click("b", "u", "y", 10, lat=40.80),
        "c": click("c", "u", "z", 30, lat=40.70),
    }
    for batch in batches:
        if batch == ["crash"]:  # the online store lost what the late event's batch wrote; the state kept it
            sink.batches.clear()
            continue
        run(processor, messages_from([clicks[e] for e in batch]))
    visits = [Visit(e.event_id, e.timestamp, e.item_id, e.latitude, e.longitude) for e in clicks.values()]
    user, row_time, features = sink.rows[-1]
    assert (user, row_time) == ("u", clicks["c"].timestamp)
    assert features == compute_features(visits, visits[-1])
    assert features["count_1h"] == 3


def test_a_replayed_event_tied_in_time_with_a_later_one_is_answered_as_first_and_leaves_the_newer_row(parts):
    """A and B share a time, B came later; A replayed (after a crash) is answered from the events up to A, as first,
    and the user's row stays B's: A's features written at B's row time would win the tie in the online store."""
    _, sink, _, processor = parts
    first = run(processor, messages_from([click("a", "u", "x", 0, lat=40.70)]))
    run(processor, messages_from([click("b", "u", "y", 0, lat=40.80)]))
    newer_row = sink.rows[-1]
    replayed = run(processor, messages_from([click("a", "u", "x", 0, lat=40.70)]))
    assert replayed.duplicates == 1
    assert replayed.predictions[0].features == first.predictions[0].features
    assert sink.rows[-1] == newer_row


def test_same_time_clicks_handed_over_out_of_order_leave_the_row_of_the_later_one_sent(parts):
    """A worker taking a partition over can read a later click (offset 6) before the seek back re-reads the one before
    it (offset 5), both in the same minute: the user's row must be the later click's, as computed offline."""
    _, sink, _, processor = parts
    a, b = click("a", "u", "x", 0, lat=40.70), click("b", "u", "y", 0, lat=40.80)
    sent = [replace(m, offset=m.offset + 5) for m in messages_from([a, b])]
    run(processor, [sent[1]])
    replayed = run(processor, sent)
    assert replayed.duplicates == 1
    visits = [Visit(e.event_id, e.timestamp, e.item_id, e.latitude, e.longitude) for e in (a, b)]
    assert sink.rows[-1][2] == compute_features(visits, visits[-1])
    assert replayed.predictions[0].features == compute_features(visits[:1], visits[0])


def test_a_full_history_answers_a_tie_of_its_oldest_event_sent_before_it_as_too_late():
    """Read after its tie at a handover, into a full history, the earlier click would be evicted at once: it is refused
    as too late (not added and lost at once, which crashed the batch) and answered from what the buffer holds."""
    processor = ClickProcessor(DictState(), ListSink(), FrequencyPredictor(), StreamSettings(history_max_events=2))
    a, b, c = click("a", "u", "x", 0), click("b", "u", "y", 0), click("c", "u", "z", 5)
    sent = messages_from([a, b, c])
    run(processor, sent[1:])
    replayed = run(processor, sent)
    assert (replayed.late, replayed.duplicates) == (1, 2)
    assert [p.event_id for p in replayed.predictions] == ["a", "b", "c"]
    assert replayed.predictions[0].features["count_10m"] == 2  # by time alone, as every too-late event


def test_a_too_late_tie_is_answered_alike_whatever_the_batch_boundaries():
    """The offsets of visits older than the lateness are not saved, so a too-late event is answered by time alone: the
    same answer whether its ties were read in its own batch or restored from the state."""
    a, b, c = click("a", "u", "x", 0), click("b", "u", "y", 0), click("c", "u", "z", 30)
    sent = [replace(m, offset=m.offset + 5) for m in messages_from([a, b, c])]
    answers, settings = [], StreamSettings(allowed_lateness_s=600)
    for batches in ([sent[1:], sent[:1]], [[*sent[1:], sent[0]]]):
        processor = ClickProcessor(DictState(), ListSink(), FrequencyPredictor(), settings)
        results = [run(processor, batch) for batch in batches]
        assert sum(r.late for r in results) == 1
        answers.append(next(p for r in results for p in r.predictions if p.event_id == "a").features)
    assert answers[0] == answers[1] and answers[0]["count_10m"] == 2


def test_state_survives_a_json_round_trip(parts):
    state, _, _, processor = parts
    run(processor, messages_from([click("a", "u", "x", 0)]))
    state["u"] = json.loads(json.dumps(state["u"]))  # as RocksDB stores it
    result = run(processor, messages_from([click("b", "u", "y", 2)]))
    assert result.predictions[0].features["count_10m"] == 2


def test_same_time_events_in_separate_batches_get_increasing_row_times(parts):
    _, sink, _, processor = parts
    run(processor, messages_from([click("a", "u", "x", 0)]))
    run(processor, messages_from([click("b", "u", "y", 0)]))
    (_, first, _), (_, second, features) = sink.rows
    assert second > first  # an online store that keeps only strictly newer rows takes the second
    assert features["count_10m"] == 2


def test_a_burst_within_microseconds_gets_row_times_in_the_order_of_its_events(parts):
    """Three check-ins at t then one a microsecond later: adding a microsecond per tied event would give the fourth
    an older row time than the third's, and the writers would keep the third's row."""
    _, sink, _, processor = parts
    microsecond = 1 / 60e6  # in minutes
    for i, (item, minutes) in enumerate([("x", 0), ("y", 0), ("z", 0), ("w", microsecond)]):
        run(processor, messages_from([click(f"e{i}", "u", item, minutes)]))
    times = [row_time for _, row_time, _ in sink.rows]
    assert times == sorted(set(times)), times  # strictly increasing
    assert times[0] == click("e0", "u", "x", 0).timestamp  # events apart keep their own time
    # Each a microsecond after the one before: the fourth's own time (t + 1 us) would not be after the third's.
    assert times == pytest.approx([times[0] + k * 1e-6 for k in range(4)], rel=0, abs=3e-7)


class NonFinitePredictor(FrequencyPredictor):
    """Scores the user "bad" with NaN, as a broken model version might."""

    async def predict(self, histories):
        out = await super().predict(histories)
        for visits, prediction in zip(histories, out, strict=True):
            if visits[-1].event_id.startswith("bad"):
                prediction.scores[0] = float("nan")
        return out


def test_an_answer_that_cannot_be_built_becomes_a_dead_letter_not_a_crash():
    processor = ClickProcessor(DictState(), ListSink(), NonFinitePredictor(), StreamSettings())
    result = run(
        processor, messages_from([click("ok1", "u", "x", 0), click("bad", "v", "y", 1), click("ok2", "u", "x", 2)])
    )
    assert [p.event_id for p in result.predictions] == ["ok1", "ok2"]
    [letter] = result.dead_letters
    assert letter.source_offset == 1 and "non-finite score" in letter.error


@pytest.mark.parametrize("timestamp", [None, 0.0, -5.0, 1.7e15, float("nan"), float("inf")])
def test_an_impossible_broker_timestamp_falls_back_to_the_receive_time(timestamp):
    assert broker_time(timestamp, 1.5e9) == 1.5e9


def test_a_plausible_broker_timestamp_is_kept():
    assert broker_time(1.7e9, 1.5e9) == 1.7e9


class DownPredictor(FrequencyPredictor):
    """Triton down: every call fails."""

    def __init__(self) -> None:
        super().__init__()
        self.attempts = 0

    async def predict(self, histories):
        self.attempts += 1
        raise ConnectionError("triton is down")


def test_a_stopping_worker_leaves_a_batch_whose_dependency_is_down_unanswered():
    predictor = DownPredictor()
    stopping = iter([False, True])  # stop is asked while the first retry waits
    processor = ClickProcessor(DictState(), ListSink(), predictor, StreamSettings(), stopping=lambda: next(stopping))
    with pytest.raises(Stopping, match="prediction still failing as the worker stops"):
        run(processor, messages_from([click("a", "u", "x", 0)]))
    assert predictor.attempts == 2  # retried once while running, given up once stopping


def test_a_running_worker_retries_a_dependency_until_it_answers():
    class Flaky(FrequencyPredictor):
        failures = 1

        async def predict(self, histories):
            if self.failures:
                self.failures -= 1
                raise ConnectionError("triton is restarting")
            return await super().predict(histories)

    processor = ClickProcessor(DictState(), ListSink(), Flaky(), StreamSettings())
    result = run(processor, messages_from([click("a", "u", "x", 0)]))
    assert [p.event_id for p in result.predictions] == ["a"]


def test_giving_up_a_batch_also_ends_its_other_dependency_call():
    class HangingSink(ListSink):
        """The online store hangs: a write never ends unless cancelled."""

        cancelled = False

        async def write(self, rows):
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                self.cancelled = True
                raise

    async def scenario(sink: HangingSink) -> bool:
        processor = ClickProcessor(DictState(), sink, DownPredictor(), StreamSettings(), stopping=lambda: True)
        with pytest.raises(Stopping):
            await processor.process(messages_from([click("a", "u", "x", 0)]))
        await asyncio.sleep(0)  # the write's cancellation runs (asyncio.run would cancel it only at its end)
        return sink.cancelled

    assert asyncio.run(scenario(HangingSink()))


@pytest.mark.parametrize(
    "saved",
    [{"v": 0, "visits": []}, {"v": 1}, ["not", "a", "state"], {"v": 1, "visits": [["e", "not a time"]]}],
    ids=["an-older-version", "no-visits", "not-an-object", "a-broken-visit"],
)
def test_a_user_whose_saved_history_is_unreadable_starts_afresh_and_is_answered(parts, saved, caplog):
    state, _, _, processor = parts
    state["u"] = saved
    result = run(processor, messages_from([click("e1", "u", "i1", 0), click("e2", "v", "i1", 0)]))
    assert [p.event_id for p in result.predictions] == ["e1", "e2"] and not result.dead_letters
    assert [visit[0] for visit in state["u"]["visits"]] == ["e1"]  # the new click alone
    assert "the saved history of user u is unreadable" in caplog.text


def test_a_saved_history_of_newer_code_stops_the_batch_instead_of_being_overwritten(parts):
    from features.history import STATE_VERSION, NewerStateError

    state, _, _, processor = parts
    newer = {"v": STATE_VERSION + 1, "visits": [], "more": "fields"}
    state["u"] = newer
    with pytest.raises(NewerStateError, match="newer code"):
        run(processor, messages_from([click("e1", "u", "i1", 0)]))
    assert state["u"] == newer


def test_a_click_whose_history_the_model_refuses_becomes_a_dead_letter_and_the_rest_are_answered():
    class RefusesTheUserBad(FrequencyPredictor):
        async def predict(self, histories):
            if any(v.event_id.startswith("bad") for h in histories for v in h):
                raise RequestRefused("a history event has coordinates outside ±90 / ±180 degrees")
            return await super().predict(histories)

    processor = ClickProcessor(DictState(), ListSink(), RefusesTheUserBad(), StreamSettings())
    events = [click("ok1", "u", "x", 0), click("bad", "v", "y", 1), click("ok2", "u", "x", 2)]
    result = run(processor, messages_from(events))
    assert [p.event_id for p in result.predictions] == ["ok1", "ok2"]
    [letter] = result.dead_letters
    assert letter.source_offset == 1
    assert "the model refused this click's history" in letter.error and "outside ±90" in letter.error


def test_each_stage_latency_is_measured_from_the_clicks_own_broker_time(parts, monkeypatch):
    import time
    from types import SimpleNamespace

    import streams.processor as processor_module

    _, _, _, processor = parts
    messages = messages_from([click("a", "u", "x", 0), click("b", "v", "y", 1)], start_ts=1e9)  # at 1e9, 1e9 + 1 ms
    wall = iter([1e9 + 0.010, 1e9 + 0.020, 1e9 + 0.050])  # received a, received b, predicted
    monkeypatch.setattr(
        processor_module, "time", SimpleNamespace(time=lambda: next(wall), perf_counter=time.perf_counter)
    )
    events = [p.event() for p in run(processor, messages).predictions]
    assert [e.latency.kafka_in_ms for e in events] == pytest.approx([10.0, 19.0], abs=1e-3)  # float64 at 1e9 s
    assert [e.latency.total_ms for e in events] == pytest.approx([50.0, 49.0], abs=1e-3)
    assert [e.received_at.timestamp() for e in events] == pytest.approx([1e9 + 0.010, 1e9 + 0.020], rel=0, abs=1e-6)
    assert [e.published_at.timestamp() for e in events] == pytest.approx([1e9, 1e9 + 0.001], rel=0, abs=1e-6)
    assert events[0].predicted_at == events[1].predicted_at
    for e in events:  # measured by perf_counter: small, and never negative
        assert 0 <= e.latency.features_ms < 1000 and 0 <= e.latency.feast_write_ms < 1000
        assert 0 <= e.latency.triton_ms < 1000
