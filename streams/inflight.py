"""Natural micro-batching with overlapping batches.

Taken events are carried until a slot is free; then everything carried (up to `batch_max`) starts as one
batch. While the model is busy, events pile up into large batches (the model's cost per row falls steeply
with batch size); when it is idle, a click starts on its own at once. Up to `depth` batches are in flight.

Starting a batch (`start`) is synchronous and happens in arrival order, so per-user state never sees
events out of order. What `start` returns (the model call, feature write and sends) runs as a task; it
awaits `previous_sent` before sending, so answers leave in the order the clicks arrived. It returns the
acknowledgement of its input, which runs only once the batch before it has finished (acknowledged too): a batch
whose answers were delivered early (another output partition) must not acknowledge past one still in flight.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

# A started batch's remaining work, called with (previous_sent, sent): awaits `previous_sent` before sending its
# answers, then resolves `sent`; returns the acknowledgement of its input, run in arrival order.
Completion = Callable[[asyncio.Future | None, asyncio.Future], Awaitable[Callable[[], None]]]


class InFlight:
    def __init__(
        self,
        start: Callable[[list[Any]], Completion],
        depth: int,
        batch_max: int,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> None:
        """`on_error` hears of the first failed batch at once: `add` re-raises it only when the next items
        arrive, which may be never once the source has delivered everything it had."""
        if depth < 1 or batch_max < 1:
            raise ValueError("depth and batch_max must be >= 1")
        self._start = start
        self._on_error = on_error
        self.depth = depth
        self.batch_max = batch_max
        self._carry: list[Any] = []
        self._tasks: set[asyncio.Task] = set()
        self._last_sent: asyncio.Future | None = None
        self._last_task: asyncio.Task | None = None
        self._error: BaseException | None = None
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        """Batches in flight."""
        return len(self._tasks)

    @property
    def carried(self) -> int:
        return len(self._carry)

    async def add(self, items: Sequence[Any]) -> None:
        """Carry `items`; start batches while slots are free. Waits while a full batch is already carried
        and no slot is free (backpressure); raises the error of a failed batch."""
        self._raise_error()
        self._carry.extend(items)
        self._dispatch()
        self._raise_error()
        while len(self._carry) >= self.batch_max and len(self._tasks) >= self.depth:
            self._changed.clear()
            await self._changed.wait()
            self._raise_error()
            self._dispatch()

    async def drain(self) -> None:
        """Wait until everything carried has been started and finished (re-raises a failure)."""
        while self._carry or self._tasks:
            self._raise_error()  # a batch that failed to start leaves what is carried, and no task to wait for
            self._changed.clear()
            await self._changed.wait()
            self._raise_error()
            self._dispatch()

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()
        self._carry.clear()

    def _raise_error(self) -> None:
        if self._error is not None:
            raise self._error

    def _dispatch(self) -> None:
        while self._carry and len(self._tasks) < self.depth and self._error is None:
            batch, self._carry = self._carry[: self.batch_max], self._carry[self.batch_max :]
            try:
                completion = self._start(batch)
            except Exception as exc:
                self._fail(exc)
                break
            previous, sent = self._last_sent, asyncio.get_running_loop().create_future()
            sent.add_done_callback(_retrieve)  # failures surface through `add`; no 'never retrieved' noise
            self._last_sent = sent
            task = asyncio.ensure_future(_guarded(completion, previous, sent, self._last_task))
            self._last_task = task
            self._tasks.add(task)
            task.add_done_callback(self._on_done)

    def _on_done(self, task: asyncio.Task) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self._fail(task.exception())
        self._dispatch()  # a free slot takes whatever was carried meanwhile
        self._changed.set()

    def _fail(self, exc: BaseException) -> None:
        if self._error is None:
            self._error = exc
            if self._on_error is not None:
                self._on_error(exc)


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _guarded(
    completion: Completion, previous: asyncio.Future | None, sent: asyncio.Future, previous_done: asyncio.Task | None
) -> None:
    try:
        acknowledge = await completion(previous, sent)
        if not callable(acknowledge):
            raise TypeError(f"a completion must return its acknowledgement, not {acknowledge!r}")
        if previous_done is not None:
            await previous_done  # raises if it failed: then this batch stays unacknowledged too
        acknowledge()
    except BaseException as exc:
        # The next batch waits on `sent`: fail it too rather than leave it waiting forever.
        if not sent.done():
            sent.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
        raise
    finally:
        if not sent.done():
            sent.set_result(None)
