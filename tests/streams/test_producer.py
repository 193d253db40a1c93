"""Replaying events: a replay stopped by hand still delivers what the client holds."""

from datetime import UTC, datetime

import pytest

from schemas.events import ClickEvent
from streams.producer import INTERRUPTED_FLUSH_S, replay


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
