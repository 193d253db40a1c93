"""The worker's answer producer: delivery futures settle once per batch, and messages arrive in order."""

from __future__ import annotations

import asyncio
import time
import uuid

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.output import OutputMessage, OutputProducer, _Batch


class Delivered:
    """What a delivery report's message tells: where it landed."""

    def __init__(self, topic: str, partition: int, offset: int) -> None:
        self._where = (topic, partition, offset)

    def topic(self) -> str:
        return self._where[0]

    def partition(self) -> int:
        return self._where[1]

    def offset(self) -> int:
        return self._where[2]


def _settle(reports: list[KafkaError | None], messages: list[Delivered] | None = None) -> asyncio.Future:
    messages = messages or [Delivered("t", 0, i) for i in range(len(reports))]

    async def run() -> asyncio.Future:
        loop = asyncio.get_running_loop()
        done = loop.create_future()
        batch = _Batch(loop, done, len(reports))
        for err, msg in zip(reports, messages, strict=True):
            assert not done.done()  # nothing settles before the last report
            await asyncio.to_thread(batch.on_delivery, err, msg)  # reports arrive on another thread
        await asyncio.wait([done], timeout=5)
        return done

    return asyncio.run(run())


def test_batch_resolves_after_its_last_delivery_report_with_each_partitions_highest_offset():
    messages = [Delivered("a", 0, 5), Delivered("b", 1, 9), Delivered("a", 0, 7), Delivered("a", 2, 3)]
    assert _settle([None] * 4, messages).result() == {("a", 0): 7, ("b", 1): 9, ("a", 2): 3}


def test_batch_fails_with_its_first_delivery_error():
    first = KafkaError(KafkaError._MSG_TIMED_OUT)
    done = _settle([None, first, KafkaError(KafkaError._TRANSPORT), None])
    with pytest.raises(KafkaException) as failure:
        done.result()
    assert failure.value.args[0].code() == KafkaError._MSG_TIMED_OUT


class Unreadable(Delivered):
    """A report whose offset cannot be read."""

    def offset(self) -> int:
        raise RuntimeError("no offset")


def test_a_delivery_without_an_offset_counts_as_delivered():
    class NoOffset(Delivered):
        def offset(self) -> None:  # confluent-kafka reports a negative offset as None
            return None

    assert _settle([None, None], [NoOffset("t", 0, 0), Delivered("t", 0, 4)]).result() == {("t", 0): 4}


def test_a_report_the_batch_cannot_read_fails_the_batch_instead_of_the_poller_thread():
    done = _settle([None, None], [Unreadable("t", 0, 0), Delivered("t", 0, 1)])
    with pytest.raises(RuntimeError, match="no offset"):
        done.result()


class FullOnce:
    """A librdkafka producer whose queue is full at the first message: the send waits, then retries."""

    def __init__(self) -> None:
        self.produced: list[bytes] = []
        self.full = True

    def produce(self, topic, value, key, partition, on_delivery) -> None:
        if self.full:
            self.full = False
            raise BufferError("queue full")
        self.produced.append(value)

    def poll(self, timeout: float) -> int:
        time.sleep(timeout)
        return 0

    def flush(self, timeout: float) -> int:
        return 0


def test_sends_begun_together_enqueue_in_the_order_they_began_even_when_one_waits_for_room():
    from streams.settings import KafkaSettings

    output = OutputProducer(KafkaSettings(port=1))  # never connects: the queue is a stand-in
    output._producer = fake = FullOnce()

    async def run() -> None:
        first = [OutputMessage("t", None, b"a1"), OutputMessage("t", None, b"a2")]
        await asyncio.gather(output.send(first), output.send([OutputMessage("t", None, b"b1")]))

    asyncio.run(run())
    output.close(0)
    assert fake.produced == [b"a1", b"a2", b"b1"]


@pytest.mark.integration
# A queue of 50 messages makes `send` wait for room (BufferError) many times over 500 messages.
@pytest.mark.parametrize("config", [{}, {"queue.buffering.max.messages": 50}], ids=["default", "small-queue"])
def test_answers_reach_the_broker_in_order(stack, config):
    from confluent_kafka.admin import AdminClient, NewTopic

    from streams.consumer import TopicReader

    topic = f"output-test-{uuid.uuid4().hex[:8]}"
    admin = AdminClient({"bootstrap.servers": stack.kafka.bootstrap})
    admin.create_topics([NewTopic(topic, 1, 1)])[topic].result(timeout=30)
    values = [f"answer-{i}".encode() for i in range(500)]
    output = OutputProducer(stack.kafka, **config)

    ticks = 0

    async def tick() -> None:  # counts how often the loop ran something else
        nonlocal ticks
        while True:
            ticks += 1
            await asyncio.sleep(0)

    async def send() -> int:
        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0)
        before = ticks
        # Two sends begun together: the second enqueues only after the first, even while the first waits for room.
        first, second = await asyncio.gather(
            output.send([OutputMessage(topic, b"u", v) for v in values[:250]]),
            output.send([OutputMessage(topic, None, v, partition=0) for v in values[250:]]),
        )
        during = ticks - before
        empty = await output.send([])
        offsets = await asyncio.wait_for(asyncio.gather(first, second, empty), 30)
        ticker.cancel()
        assert offsets == [{(topic, 0): 249}, {(topic, 0): 499}, {}]  # a fresh topic: offsets count from 0
        return during

    try:
        during = asyncio.run(send())
    finally:
        assert output.close(10) == 0
    if config:  # waiting for room in a full queue must leave the event loop free
        assert during > 0
    with TopicReader(stack, topic, from_beginning=True) as reader:
        got = [m.value() for _, m in zip(values, reader.messages(idle_timeout=20), strict=False)]
    assert got == values
