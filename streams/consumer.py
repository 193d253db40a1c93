"""Reading an output topic (predictions or dead letters) from the end or the beginning."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterator

from confluent_kafka import OFFSET_BEGINNING, OFFSET_END, Consumer, KafkaError, KafkaException

from streams.kafka_config import confluent_config
from streams.settings import Settings

log = logging.getLogger(__name__)

_LEADERLESS = {
    KafkaError.NOT_LEADER_FOR_PARTITION,
    KafkaError.LEADER_NOT_AVAILABLE,
    KafkaError.UNKNOWN_TOPIC_OR_PART,
    KafkaError._TIMED_OUT,
}

# What a reader stops on besides a fatal error: waiting would not change them. Anything else (a lost connection, a
# restarting broker) is waited out.
_UNMENDABLE = {
    KafkaError.TOPIC_AUTHORIZATION_FAILED,
    KafkaError.GROUP_AUTHORIZATION_FAILED,
    KafkaError.CLUSTER_AUTHORIZATION_FAILED,
    KafkaError.SASL_AUTHENTICATION_FAILED,
    KafkaError._AUTHENTICATION,
    KafkaError._SSL,
}


def watermarks(consumer: Consumer, tp, timeout_s: float = 30.0) -> tuple[int, int]:
    """Low and high offsets, waiting out a partition whose leader is not elected yet (a new topic)."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return consumer.get_watermark_offsets(tp, timeout=10.0)
        except KafkaException as exc:
            error = exc.args[0]
            transient = error.retriable() or error.code() in _LEADERLESS
            if not transient or time.monotonic() > deadline:
                raise
            time.sleep(0.2)


class TopicReader:
    """A throw-away consumer group that reads all partitions of one topic and commits nothing."""

    def __init__(self, settings: Settings, topic: str, from_beginning: bool = False) -> None:
        self.topic = topic
        self._start = OFFSET_BEGINNING if from_beginning else OFFSET_END
        self._assigned = False
        self._consumer = Consumer(
            confluent_config(
                settings.kafka,
                **{
                    "group.id": f"clickcast-reader-{uuid.uuid4().hex[:8]}",
                    "enable.auto.commit": False,
                    # The demo reads its dead letters only after its predictions: a reader left unpolled that long
                    # must keep its partitions (a rejoin would position it at the end again, past what came).
                    "max.poll.interval.ms": 86_400_000,
                    "auto.offset.reset": "earliest" if from_beginning else "latest",
                },
            )
        )
        self._consumer.subscribe([topic], on_assign=self._on_assign)

    def _on_assign(self, consumer: Consumer, partitions) -> None:
        for tp in partitions:
            # Explicit offsets: OFFSET_END would be resolved lazily, after a caller may already have produced.
            low, high = watermarks(consumer, tp)
            tp.offset = low if self._start == OFFSET_BEGINNING else high
        consumer.assign(partitions)
        self._assigned = True

    def wait_assigned(self, timeout: float = 30.0) -> None:
        """Block until partitions are assigned (and positioned), so nothing published after this is missed."""
        deadline = time.monotonic() + timeout
        while not self._assigned:
            if time.monotonic() > deadline:
                raise TimeoutError(f"no partitions of {self.topic} assigned within {timeout}s")
            self._consumer.poll(0.1)

    def messages(self, idle_timeout: float | None = None) -> Iterator:
        """Yield messages; stop after `idle_timeout` seconds without one (None: never)."""
        last = time.monotonic()
        while True:
            msg = self._consumer.poll(0.2)
            if msg is not None and (error := msg.error()):
                if error.fatal() or error.code() in _UNMENDABLE:
                    raise KafkaException(error)
                if error.code() != KafkaError._PARTITION_EOF:
                    log.warning("reading %s: %s (retrying)", self.topic, error.str())
                msg = None  # waited out like an empty poll
            if msg is None:
                if idle_timeout is not None and time.monotonic() - last > idle_timeout:
                    return
                continue
            last = time.monotonic()
            yield msg

    def close(self) -> None:
        self._consumer.close()

    def __enter__(self) -> TopicReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
