"""The worker's output (predictions, dead letters, the user table's changelog) goes out through librdkafka, not
faust's aiokafka producer.

faust sends each message through several Python coroutines and futures (~15% of a worker's CPU at full
speed for the answers, and a quarter for the changelog, measured with py-spy and in paired runs); librdkafka
batches, compresses and retries in its own C threads, and a batch costs one Python call per message plus one
wake-up of the event loop when all of it is on the broker. faust keeps consuming and committing.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence
from typing import NamedTuple

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.kafka_config import confluent_config
from streams.settings import KafkaSettings

# Where librdkafka's partitioner places a message (by its key): RD_KAFKA_PARTITION_UA.
BY_KEY = -1


class OutputMessage(NamedTuple):
    topic: str
    key: bytes | None
    value: bytes | None  # None: a tombstone
    partition: int = BY_KEY


# (topic, partition) -> the highest offset a batch's messages got there
Offsets = dict[tuple[str, int], int]


class _Batch:
    """Counts one batch's delivery reports (on the poller thread) and settles its future once, on the loop, with the
    highest offset its messages got in each partition."""

    __slots__ = ("_done", "_error", "_loop", "_offsets", "_remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future, size: int) -> None:
        self._loop = loop
        self._done = done
        self._remaining = size
        self._error: BaseException | None = None
        self._offsets: Offsets = {}

    def on_delivery(self, err: KafkaError | None, msg) -> None:
        try:
            if err is not None:
                if self._error is None:
                    self._error = KafkaException(err)
            else:
                offset = msg.offset()
                if offset is not None:  # delivered, but no offset reported: nothing to record of it
                    where = (msg.topic(), msg.partition())
                    self._offsets[where] = max(offset, self._offsets.get(where, -1))
        except Exception as exc:  # raised here, it would end the poller thread and leave every batch unsettled
            if self._error is None:
                self._error = exc
        self._remaining -= 1
        if self._remaining == 0:
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self._done.done():  # cancelled: the worker is stopping, the offsets stay uncommitted
            return
        if self._error is None:
            self._done.set_result(self._offsets)
        else:
            self._done.set_exception(self._error)


class OutputProducer:
    """Idempotent, acks=all producer; one background thread serves its delivery reports (only that thread polls:
    a batch's countdown is not safe against two threads serving reports at once)."""

    def __init__(self, kafka: KafkaSettings, **config: object) -> None:
        self._producer = Producer(
            confluent_config(
                kafka,
                **{
                    "enable.idempotence": True,  # retries keep order and never duplicate
                    # A batch's messages are enqueued together, so waiting batches nothing more: 1 ms of linger held a
                    # lone answer 1.2-1.4 ms longer at 100 events/s (Kafka-out p50 1.7-1.9 against 0.45-0.53 ms), and
                    # at full speed 0 sent no more requests (broker CPU an event the same).
                    "linger.ms": 0,
                    "compression.type": "lz4",
                    **config,
                },
            )
        )
        # Sends enqueue one after another, in the order they begin (asyncio's lock is FIFO), even when one waits for
        # room in a full queue: records of one partition must reach it in order.
        self._enqueueing = asyncio.Lock()
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="output-deliveries", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    async def send(self, messages: Sequence[OutputMessage]) -> asyncio.Future[Offsets]:
        """Enqueue `messages` in order; the returned future resolves when every one is on the broker, to the highest
        offset they got in each (topic, partition), and fails with the first delivery error. Waits (without
        blocking the loop) while librdkafka's queue is full."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not messages:
            done.set_result({})
            return done
        batch = _Batch(loop, done, len(messages))
        produce = self._producer.produce
        async with self._enqueueing:
            for topic, key, value, partition in messages:
                while True:
                    try:
                        produce(topic, value, key, partition=partition, on_delivery=batch.on_delivery)
                        break
                    except BufferError:  # librdkafka's queue is full: the broker is slow; the poller makes room
                        await asyncio.sleep(0.01)  # the loop keeps heartbeats and commits going meanwhile
        return done

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (up to `timeout_s`); returns how many messages are still undelivered."""
        self._stopping.set()
        self._poller.join()  # first, so that delivery reports are never served by two threads at once
        return self._producer.flush(timeout_s)
