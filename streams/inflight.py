"""Overlapping micro-batches: while one batch waits on Triton and the online store, the next is prepared.

A batch's state and features are computed synchronously, in arrival order, before the next batch is
taken, so per-user state never sees events out of order. What follows (model call, feature write,
sending the answers) runs as a task; up to `depth` of them are in flight. Each task sends its answers
only after the previous task has sent its own, so answers leave in the order the clicks arrived.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable

# A batch's completion: awaits `previous_sent` before sending its answers, then resolves `sent`.
Completion = Callable[[asyncio.Future | None, asyncio.Future], Awaitable[None]]


class InFlight:
    def __init__(self, depth: int) -> None:
        if depth < 1:
            raise ValueError("depth must be >= 1")
        self.depth = depth
        self._tasks: deque[asyncio.Task] = deque()
        self._last_sent: asyncio.Future | None = None

    def __len__(self) -> int:
        return len(self._tasks)

    async def submit(self, completion: Completion) -> None:
        """Start `completion`; first wait while `depth` batches are in flight. Re-raises a failed batch's error."""
        while self._tasks and (len(self._tasks) >= self.depth or self._tasks[0].done()):
            await self._tasks.popleft()
        previous, sent = self._last_sent, asyncio.get_running_loop().create_future()
        sent.add_done_callback(_retrieve)  # a failure is raised through the task; no 'never retrieved' noise
        self._last_sent = sent
        self._tasks.append(asyncio.ensure_future(_guarded(completion, previous, sent)))

    async def drain(self) -> None:
        """Wait for every batch in flight (re-raises the first failure)."""
        while self._tasks:
            await self._tasks.popleft()

    def cancel(self) -> None:
        for task in self._tasks:
            task.cancel()
        self._tasks.clear()


def _retrieve(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()


async def _guarded(completion: Completion, previous: asyncio.Future | None, sent: asyncio.Future) -> None:
    try:
        await completion(previous, sent)
    except BaseException as exc:
        # The next batch waits on `sent`: fail it too rather than leave it waiting forever.
        if not sent.done():
            sent.set_exception(exc if isinstance(exc, Exception) else asyncio.CancelledError())
        raise
    finally:
        if not sent.done():
            sent.set_result(None)
