"""The worker's answers (predictions, dead letters) go out through librdkafka, not faust's aiokafka producer.

faust sends each message through several Python coroutines and futures (~15% of a worker's CPU at full
speed, measured with py-spy); librdkafka batches, compresses and retries in its own C threads, and a batch
costs one Python call per message plus one wake-up of the event loop when all of it is on the broker.
faust keeps consuming, committing and writing the table's changelog.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Sequence

from confluent_kafka import KafkaError, KafkaException, Producer

from streams.kafka_config import confluent_config
from streams.settings import KafkaSettings

# (topic, key, value)
OutputMessage = tuple[str, bytes | None, bytes]


class _Batch:
    """Counts one batch's delivery reports (on the poller thread) and settles its future once, on the loop."""

    __slots__ = ("_done", "_error", "_loop", "_remaining")

    def __init__(self, loop: asyncio.AbstractEventLoop, done: asyncio.Future, size: int) -> None:
        self._loop = loop
        self._done = done
        self._remaining = size
        self._error: KafkaError | None = None

    def on_delivery(self, err: KafkaError | None, _msg) -> None:
        if err is not None and self._error is None:
            self._error = err
        self._remaining -= 1
        if self._remaining == 0:
            self._loop.call_soon_threadsafe(self._settle)

    def _settle(self) -> None:
        if self._done.done():  # cancelled: the worker is stopping, the offsets stay uncommitted
            return
        if self._error is None:
            self._done.set_result(None)
        else:
            self._done.set_exception(KafkaException(self._error))


class OutputProducer:
    """Idempotent, acks=all producer; one background thread serves its delivery reports (only that thread polls:
    a batch's countdown is not safe against two threads serving reports at once)."""

    def __init__(self, kafka: KafkaSettings, **config: object) -> None:
        self._producer = Producer(
            confluent_config(
                kafka,
                **{
                    "enable.idempotence": True,  # retries keep order and never duplicate
                    "linger.ms": 1,  # a batch's messages are enqueued together; do not hold a lone answer
                    "compression.type": "lz4",
                    **config,
                },
            )
        )
        self._stopping = threading.Event()
        self._poller = threading.Thread(target=self._poll, name="output-deliveries", daemon=True)
        self._poller.start()

    def _poll(self) -> None:
        while not self._stopping.is_set():
            self._producer.poll(0.1)

    async def send(self, messages: Sequence[OutputMessage]) -> asyncio.Future:
        """Enqueue `messages` in order; the returned future resolves when every one is on the broker and fails
        with the first delivery error. Waits (without blocking the loop) while librdkafka's queue is full."""
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        if not messages:
            done.set_result(None)
            return done
        batch = _Batch(loop, done, len(messages))
        produce = self._producer.produce
        for topic, key, value in messages:
            while True:
                try:
                    produce(topic, value, key, on_delivery=batch.on_delivery)
                    break
                except BufferError:  # librdkafka's queue is full: the broker is slow; the poller makes room
                    await asyncio.sleep(0.01)  # the loop keeps heartbeats and commits going meanwhile
        return done

    def close(self, timeout_s: float = 30.0) -> int:
        """Deliver what is queued (up to `timeout_s`); returns how many messages are still undelivered."""
        self._stopping.set()
        self._poller.join()  # first, so that delivery reports are never served by two threads at once
        return self._producer.flush(timeout_s)
