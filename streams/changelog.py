"""The user table's changelog records go out on the worker's own producer (`streams.output`), not faust's.

`TableState` queues a record per write and a tombstone per expired user; `ChangelogSender.send` takes what is
queued and delivers it, and the offsets the records got become the table store's persisted offsets (what faust
does for its own sends), so that a restart recovers only what came after them. `drain` delivers everything before a
rebalance takes partitions away or the worker stops, as faust flushes its producer then: the next owner of a
partition must find every record of it on the broker.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from typing import Protocol

from streams.output import Offsets, OutputMessage

log = logging.getLogger(__name__)


class ChangelogSource(Protocol):
    def take_changelog(self) -> list[OutputMessage]: ...

    def persisted(self, offsets: Offsets) -> None: ...


class Producer(Protocol):
    async def send(self, messages: Sequence[OutputMessage]) -> asyncio.Future[Offsets]: ...


class ChangelogSender:
    def __init__(
        self,
        source: ChangelogSource,
        producer: Producer,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """`on_error` hears of every undelivered send. A batch's own send also fails the batch, but nothing awaits
        expiry's tombstones: the store has deleted those users, and a changelog that still holds them brings them
        back to whoever recovers the partition. Sending them again later could overtake a newer write of the user."""
        self.source = source
        self.producer = producer
        self.on_error = on_error
        # Once the worker stops, faust has dropped the table's stores and recording an offset would reopen one: offsets
        # are no longer recorded (a restart then replays a little more of the changelog, which is always safe).
        self.stopping = False
        self._pending: set[asyncio.Task] = set()

    def send(self) -> asyncio.Task:
        """Deliver what is queued; sends enqueue in the order they begin. The task fails if a record is not
        delivered (logged here too: expiry's tombstones have no one else to tell)."""
        task = asyncio.ensure_future(self._deliver(self.source.take_changelog()))
        self._pending.add(task)
        task.add_done_callback(self._done)
        return task

    async def drain(self) -> None:
        """Send what is queued and wait until every send so far is delivered (or failed). Cancelling the wait
        leaves the sends alone: batches await them too."""
        self.send()
        await asyncio.wait(set(self._pending))

    async def _deliver(self, records: list[OutputMessage]) -> None:
        if not records:
            return
        offsets = await (await self.producer.send(records))
        if self.stopping:
            return
        try:
            self.source.persisted(offsets)
        except Exception as exc:  # delivered all the same: a restart replays more of the changelog, nothing is lost
            log.warning("could not record the table's persisted changelog offsets: %r", exc)

    def _done(self, task: asyncio.Task) -> None:
        self._pending.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("table changelog records undelivered: %r", task.exception())
            if self.on_error is not None and not self.stopping:  # a stop under way needs no second one
                self.on_error(task.exception())
