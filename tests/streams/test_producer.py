"""Replaying events: a replay stopped by hand still delivers what the client holds."""

from datetime import UTC, datetime

import pytest
from confluent_kafka import KafkaException

from schemas.events import ClickEvent
from streams.producer import INTERRUPTED_FLUSH_S, ClickProducer, Pacer, replay


class Recording:
    """Stands in for ClickProducer: records sends and flushes."""

    def __init__(self) -> None:
        self.sent: list[str] = []
        self.flushes: list[float | None] = []

    def send(self, event: ClickEvent) -> None:
        self.sent.append(event.event_id)

    def flush(self, timeout: float | None = None) -> int:
        self.flushes.append(timeout)
        return len(self.sent)


def _events(n: int, stop_after: int):
    for i in range(n):
        if i == stop_after:
            raise KeyboardInterrupt
        yield ClickEvent(
            event_id=f"e{i}",
            user_id="u",
            item_id="i",
            event_time=datetime(2012, 4, 3, tzinfo=UTC),
            latitude=40.7,
            longitude=-74.0,
        )


def test_a_replay_stopped_by_hand_flushes_what_it_sent_then_stops():
    producer = Recording()
    with pytest.raises(KeyboardInterrupt):
        replay(_events(10, stop_after=3), producer)
    assert producer.sent == ["e0", "e1", "e2"] and producer.flushes == [INTERRUPTED_FLUSH_S]


def test_a_stop_by_hand_stays_a_stop_when_some_events_were_not_delivered():
    from confluent_kafka import KafkaException

    class Undelivered(Recording):
        def flush(self, timeout: float | None = None) -> int:
            raise KafkaException("2 events still undelivered after 10.0s")

    with pytest.raises(KeyboardInterrupt):
        replay(_events(10, stop_after=3), Undelivered())


def test_a_whole_replay_flushes_once_at_the_end():
    producer = Recording()
    summary = replay(_events(4, stop_after=-1), producer)
    assert summary.events == 4 and producer.flushes == [None]


class FakeClock:
    """time.perf_counter and time.sleep of streams.producer: sleeping moves the clock, and each sleep is recorded."""

    def __init__(self) -> None:
        self.now, self.sleeps = 100.0, []

    def perf_counter(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(round(seconds, 9))
        self.now += seconds


@pytest.fixture
def clock(monkeypatch):
    import streams.producer as producer

    fake = FakeClock()
    monkeypatch.setattr(producer.time, "perf_counter", fake.perf_counter)
    monkeypatch.setattr(producer.time, "sleep", fake.sleep)
    return fake


def test_a_fixed_rate_sends_on_its_schedule_and_a_late_sender_catches_up_without_waiting(clock):
    pacer = Pacer(rate=4.0)
    for _ in range(3):
        pacer.wait(0.0)
    assert clock.sleeps == [0.25, 0.25]  # the first goes at once, then one every 1/4 s
    clock.now += 1.0  # the sender fell a second behind (at 101.5): the 4th to 7th (due 100.75-101.5) go at once
    for _ in range(4):
        pacer.wait(0.0)
    assert clock.sleeps == [0.25, 0.25]
    pacer.wait(0.0)  # the 8th is due at 101.75: the schedule holds, it did not restart from the late send
    assert clock.sleeps == [0.25, 0.25, 0.25] and clock.now == pytest.approx(101.75)


def test_speed_replays_event_time_faster_and_no_pacing_never_waits(clock):
    pacer = Pacer(speed=60.0)  # a minute of event time a second
    for event_ts in (0.0, 60.0, 180.0):
        pacer.wait(event_ts)
    assert clock.sleeps == [1.0, 2.0]
    unpaced = Pacer()
    for event_ts in (0.0, 1e6):
        unpaced.wait(event_ts)
    assert clock.sleeps == [1.0, 2.0]


def test_a_long_wait_sleeps_in_steps_that_add_up_to_it(clock, monkeypatch):
    import streams.producer as producer

    monkeypatch.setattr(producer, "MAX_SLEEP_S", 1e6)
    pacer = Pacer(rate=1 / 3.5e6)
    pacer.wait(0.0)
    pacer.wait(0.0)  # due 3.5e6 s after the first
    assert clock.sleeps == [1e6, 1e6, 1e6, 5e5]


def test_a_pace_too_slow_for_one_sleep_waits_in_steps_instead_of_overflowing(clock, monkeypatch):
    import streams.producer as producer

    def sleep(seconds: float) -> None:
        if seconds > 1e9:  # the real time.sleep overflows the platform's time_t long before 1e300 s
            raise OverflowError("timestamp out of range for platform time_t")
        clock.sleep(seconds)
        if len(clock.sleeps) == 3:
            raise KeyboardInterrupt  # how a person ends such a replay

    monkeypatch.setattr(producer.time, "sleep", sleep)
    pacer = Pacer(rate=1e-300)
    pacer.wait(0.0)
    with pytest.raises(KeyboardInterrupt):
        pacer.wait(0.0)
    assert clock.sleeps == [producer.MAX_SLEEP_S] * 3


@pytest.mark.parametrize("kwargs", [{"speed": 2.0, "rate": 5.0}, {"rate": 0.0}, {"speed": -1.0}])
def test_a_pacer_refuses_both_paces_or_one_that_is_not_positive(kwargs):
    with pytest.raises(ValueError):
        Pacer(**kwargs)


def unreachable_producer() -> ClickProducer:
    """A real client whose broker never answers (the discard port), giving up on each event after 0.3 s."""
    from streams.settings import KafkaSettings, Settings

    settings = Settings(kafka=KafkaSettings(port=9))
    return ClickProducer(settings, topic="clicks", **{"message.timeout.ms": 300, "log_level": 0})


def click_event() -> ClickEvent:
    return ClickEvent(
        event_id="e1", user_id="u1", item_id="i1", event_time=datetime(2012, 4, 3, tzinfo=UTC), latitude=40.7,
        longitude=-74.0,
    )  # fmt: skip


def test_events_that_could_not_be_delivered_make_the_flush_raise_not_pass_as_sent():
    producer = unreachable_producer()
    producer.send(click_event())
    with pytest.raises(KafkaException, match="1 events failed delivery"):
        producer.flush(timeout=10)
    assert producer.delivered == 0


def test_leaving_with_an_error_in_flight_raises_that_error_not_the_undelivered_events():
    with pytest.raises(ValueError, match="the replay's own error"), unreachable_producer() as producer:
        producer.send(click_event())
        raise ValueError("the replay's own error")
