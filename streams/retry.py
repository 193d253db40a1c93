"""Waiting out a dead dependency instead of dropping events."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

log = logging.getLogger(__name__)


class Stopping(RuntimeError):
    """The worker is stopping while a dependency still fails: the batch ends unanswered and unacknowledged."""


def never() -> bool:
    return False


async def retry_forever(
    what: str, call: Callable[[], Awaitable[Any]], stopping: Callable[[], bool] = never
) -> tuple[Any, float]:
    """Retry a dependency call until it succeeds; returns (value, ms of the successful call).

    At-least-once: while Triton or the online store is down the partition waits (its offsets are not
    acked), rather than skipping events. Clients retry fast failures themselves; this is the slow loop.
    Once `stopping()` is true, a failure raises `Stopping` instead: faust's stop (and a rebalance, `give_up_when`)
    waits for every started click, so retrying on would hold it for as long as the outage lasts. Nothing is lost;
    the group hands the batch's clicks out again.
    """
    delay = 0.5
    while True:
        start = time.perf_counter()
        try:
            value = await call()
            return value, (time.perf_counter() - start) * 1000.0
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            if stopping():
                why = f"{type(exc).__name__}: {exc}"
                raise Stopping(f"{what} still failing as the worker stops or gives its partitions up ({why})") from exc
            log.warning("%s failed (%s: %s); retrying in %.1fs", what, type(exc).__name__, exc, delay)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 10.0)


def give_up_when(
    should_stop: Callable[[], bool],
    rebalance: Callable[[], int | None],
    grace_s: float,
    clock: Callable[[], float] = time.monotonic,
) -> Callable[[], bool]:
    """The `stopping` of `retry_forever` for a worker: true once it stops, or once a rebalance (`rebalance()`: its
    number while one runs, else None) has found a dependency failing for `grace_s`. A rebalance waits for every
    click in flight; a member that keeps it waiting past the group's rebalance timeout is removed from the group yet
    runs on, writing the state of partitions that another worker now owns. Giving up stops the worker instead, and
    the group hands its clicks out again."""
    seen: int | None = None  # the rebalance whose first failure is `since`
    since = 0.0

    def stopping() -> bool:
        nonlocal seen, since
        if should_stop():
            return True
        current = rebalance()
        if current is None:
            return False
        if current != seen:  # a later rebalance: its own grace, from its first failure
            seen, since = current, clock()
        return clock() - since >= grace_s

    return stopping
