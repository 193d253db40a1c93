"""ChangelogSender: queued records are delivered in order, their offsets persisted, and `drain` waits for them all."""

from __future__ import annotations

import asyncio
import logging

import pytest

from streams.changelog import ChangelogSender
from streams.output import OutputMessage


class Source:
    def __init__(self) -> None:
        self.queued: list[OutputMessage] = []
        self.persisted_offsets: list[dict] = []

    def take_changelog(self) -> list[OutputMessage]:
        records, self.queued = self.queued, []
        return records

    def persisted(self, offsets) -> None:
        self.persisted_offsets.append(offsets)


class Producer:
    """Delivers each send when told to, giving its records consecutive offsets of partition 0."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[list[OutputMessage]] = []
        self.deliveries: list[asyncio.Future] = []
        self.fail = fail

    async def send(self, messages) -> asyncio.Future:
        self.sent.append(list(messages))
        done = asyncio.get_running_loop().create_future()
        self.deliveries.append(done)
        return done

    def deliver_all(self) -> None:
        offset = -1
        for batch, done in zip(self.sent, self.deliveries, strict=True):
            offset += len(batch)
            if done.done():
                continue
            if self.fail:
                done.set_exception(ConnectionError("broker down"))
            else:
                done.set_result({("cl", 0): offset})


def record(key: str) -> OutputMessage:
    return OutputMessage("cl", key.encode(), b"{}", 0)


def test_sends_take_what_is_queued_in_order_and_persist_the_delivered_offsets():
    source, producer = Source(), Producer()

    async def run() -> None:
        sender = ChangelogSender(source, producer)
        source.queued = [record("a"), record("b")]
        first = sender.send()
        source.queued = [record("c")]
        second = sender.send()
        empty = sender.send()  # nothing queued: nothing sent
        await asyncio.sleep(0)
        assert not first.done()  # not before delivery
        producer.deliver_all()
        await asyncio.gather(first, second, empty)

    asyncio.run(run())
    assert producer.sent == [[record("a"), record("b")], [record("c")]]
    assert source.persisted_offsets == [{("cl", 0): 1}, {("cl", 0): 2}]


def test_drain_sends_what_is_queued_and_waits_for_every_send():
    source, producer = Source(), Producer()

    async def run() -> None:
        sender = ChangelogSender(source, producer)
        source.queued = [record("a")]
        sender.send()
        source.queued = [record("tombstone")]
        drained = asyncio.ensure_future(sender.drain())
        await asyncio.sleep(0.01)
        assert not drained.done()  # a send is not delivered yet
        producer.deliver_all()
        await asyncio.wait_for(drained, 1)

    asyncio.run(run())
    assert [m.key for batch in producer.sent for m in batch] == [b"a", b"tombstone"]
    assert len(source.persisted_offsets) == 2


def deliver_one(source: Source, producer: Producer, stopping: bool = False, on_error=None) -> asyncio.Task:
    """One record sent and delivered (or failed); the send's task, done."""

    async def run() -> asyncio.Task:
        sender = ChangelogSender(source, producer, on_error=on_error)
        sender.stopping = stopping
        source.queued = [record("a")]
        task = sender.send()
        await asyncio.sleep(0)
        producer.deliver_all()
        await sender.drain()  # waits, without raising, for a failed send too
        return task

    return asyncio.run(run())


def test_an_undelivered_send_fails_its_task_is_logged_and_told(caplog):
    source, told = Source(), []
    with caplog.at_level(logging.ERROR, logger="streams.changelog"):
        task = deliver_one(source, Producer(fail=True), on_error=told.append)
    with pytest.raises(ConnectionError):
        task.result()
    assert source.persisted_offsets == [] and "undelivered" in caplog.text
    assert [type(e) for e in told] == [ConnectionError]  # the worker stops: nothing else awaits expiry's tombstones
    told.clear()
    deliver_one(Source(), Producer(), on_error=told.append)
    deliver_one(Source(), Producer(fail=True), stopping=True, on_error=told.append)  # a stop is already under way
    assert told == []


def test_offsets_that_cannot_be_recorded_are_logged_and_the_send_still_succeeds(caplog):
    source = Source()

    def closed_store(offsets) -> None:
        raise RuntimeError("store closed")

    source.persisted = closed_store
    with caplog.at_level(logging.WARNING, logger="streams.changelog"):
        assert deliver_one(source, Producer()).exception() is None
    assert "persisted changelog offsets" in caplog.text


def test_a_cancelled_drain_leaves_the_sends_that_batches_await():
    source, producer = Source(), Producer()

    async def run() -> asyncio.Task:
        sender = ChangelogSender(source, producer)
        source.queued = [record("a")]
        batch_send = sender.send()
        drained = asyncio.ensure_future(sender.drain())
        await asyncio.sleep(0.01)
        drained.cancel()
        await asyncio.sleep(0)
        producer.deliver_all()
        await asyncio.wait_for(batch_send, 1)
        return batch_send

    assert not asyncio.run(run()).cancelled()
    assert source.persisted_offsets == [{("cl", 0): 0}]


def test_once_stopping_offsets_are_not_recorded():
    source, producer = Source(), Producer()
    assert deliver_one(source, producer, stopping=True).exception() is None
    assert producer.sent == [[record("a")]] and source.persisted_offsets == []
