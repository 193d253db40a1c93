"""Publishing click events: a small producer API for applications, and CSV replay in event-time order."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from confluent_kafka import KafkaException, Producer

from schemas.events import ClickEvent
from streams.kafka_config import confluent_config
from streams.settings import Settings, get_settings

# How long a replay stopped by hand (or by an error) waits for what the client still holds.
INTERRUPTED_FLUSH_S = 10.0
MAX_SLEEP_S = 60.0  # the longest single sleep of a paced replay


class ClickProducer:
    """Publishes `ClickEvent`s to the clicks topic, keyed by user so a user's events stay in order."""

    def __init__(self, settings: Settings | None = None, topic: str | None = None, **config: object) -> None:
        self.settings = settings or get_settings()
        self.topic = topic or self.settings.topics.clicks
        self._failed: list[str] = []
        self._delivered = 0
        self._producer = Producer(
            confluent_config(
                self.settings.kafka,
                **{
                    "linger.ms": 5,
                    "enable.idempotence": True,
                    "compression.type": "lz4",
                    # Java clients' hash: their events and ours for one user land in the same partition.
                    "partitioner": "murmur2_random",
                    **config,
                },
            )
        )

    def _on_delivery(self, err, msg) -> None:
        if err is None:
            self._delivered += 1
        else:
            self._failed.append(str(err))

    def send(self, event: ClickEvent) -> None:
        self.send_raw(event.user_id.encode(), event.to_wire())

    def send_raw(self, key: bytes | None, value: bytes) -> None:
        """Publish bytes as they are (also how tests put malformed events on the topic)."""
        while True:
            try:
                self._producer.produce(self.topic, value=value, key=key, on_delivery=self._on_delivery)
                break
            except BufferError:  # local queue full: let deliveries drain, then retry
                self._producer.poll(0.05)
        self._producer.poll(0)

    def flush(self, timeout: float = 30.0) -> int:
        """Wait for deliveries; raises if any event could not be delivered (nothing is dropped silently)."""
        remaining = self._producer.flush(timeout)
        if remaining:
            raise KafkaException(f"{remaining} events still undelivered after {timeout}s")
        if self._failed:
            raise KafkaException(f"{len(self._failed)} events failed delivery, first: {self._failed[0]}")
        return self._delivered

    def __enter__(self) -> ClickProducer:
        return self

    @property
    def delivered(self) -> int:
        """Events the broker has acknowledged so far."""
        return self._delivered

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.flush()
        else:  # the error in flight is the one to see: deliver what is queued without raising over it
            self._producer.flush(INTERRUPTED_FLUSH_S)


@dataclass
class Pacer:
    """Spaces sends in wall-clock time: `speed` x real event time, or a fixed `rate` per second, or neither."""

    speed: float | None = None
    rate: float | None = None
    _start_wall: float = field(default=0.0, init=False)
    _start_event: float | None = field(default=None, init=False)
    _sent: int = field(default=0, init=False)

    def __post_init__(self) -> None:
        if self.speed is not None and self.rate is not None:
            raise ValueError("give either speed or rate, not both")
        if (self.speed is not None and self.speed <= 0) or (self.rate is not None and self.rate <= 0):
            raise ValueError("speed and rate must be positive")

    def wait(self, event_ts: float) -> None:
        if self._start_event is None:
            self._start_event, self._start_wall = event_ts, time.perf_counter()
        if self.speed is not None:
            due = self._start_wall + (event_ts - self._start_event) / self.speed
        elif self.rate is not None:
            due = self._start_wall + self._sent / self.rate
        else:
            due = 0.0
        self._sent += 1
        # In steps: time.sleep overflows on a delay past the platform's time_t (a rate of 1e-300 events/s).
        while (delay := due - time.perf_counter()) > 0:
            time.sleep(min(delay, MAX_SLEEP_S))


@dataclass
class ReplaySummary:
    events: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.events / self.seconds if self.seconds > 0 else float("inf")


def replay(
    events: Iterable[ClickEvent],
    producer: ClickProducer,
    pacer: Pacer | None = None,
    on_sent: Callable[[int], None] | None = None,
) -> ReplaySummary:
    pacer = pacer or Pacer()
    start = time.perf_counter()
    sent = 0
    try:
        for event in events:
            pacer.wait(event.timestamp)
            producer.send(event)
            sent += 1
            if on_sent is not None:
                on_sent(sent)
    except KeyboardInterrupt:
        # A paced replay runs until stopped by hand: what the client already holds still goes out, and the stop stays
        # a stop (the caller says how many events the broker took) even when some could not be delivered.
        with contextlib.suppress(KafkaException):
            producer.flush(INTERRUPTED_FLUSH_S)
        raise
    producer.flush()
    return ReplaySummary(events=sent, seconds=time.perf_counter() - start)
