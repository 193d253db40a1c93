"""When a worker's dependency retries give up: at its stop, or once a rebalance has waited on them too long."""

import asyncio

import pytest

from streams.retry import Stopping, give_up_when, retry_forever


def test_retries_give_up_at_a_stop_at_once_and_in_a_rebalance_after_the_grace():
    now, flags = [0.0], {"stop": False, "rebalancing": False}
    stopping = give_up_when(lambda: flags["stop"], lambda: flags["rebalancing"], grace_s=20.0, clock=lambda: now[0])
    assert not stopping()
    flags["rebalancing"] = True
    assert not stopping()  # the grace starts at the first failure seen in the rebalance
    now[0] = 19.0
    assert not stopping()
    now[0] = 20.0
    assert stopping()
    flags["rebalancing"] = False  # over: the next rebalance gets its own grace
    assert not stopping()
    flags["rebalancing"], now[0] = True, 100.0
    assert not stopping()
    now[0] = 110.0
    assert not stopping()
    flags["stop"] = True
    assert stopping()


def test_a_failing_call_gives_up_once_stopping_says_so():
    calls = []

    async def failing():
        calls.append(1)
        raise ConnectionError("triton down")

    with pytest.raises(Stopping, match=r"prediction still failing .* gives its partitions up \(ConnectionError"):
        asyncio.run(retry_forever("prediction", failing, stopping=lambda: len(calls) >= 2))
    assert len(calls) == 2
