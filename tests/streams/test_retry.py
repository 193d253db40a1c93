"""When a worker's dependency retries give up: at its stop, or once a rebalance has waited on them too long."""

import asyncio

import pytest

from streams.retry import Stopping, give_up_when, retry_forever


def test_retries_give_up_at_a_stop_at_once_and_in_a_rebalance_after_the_grace():
    now, state = [0.0], {"stop": False, "rebalance": None}
    stopping = give_up_when(lambda: state["stop"], lambda: state["rebalance"], grace_s=20.0, clock=lambda: now[0])
    assert not stopping()
    state["rebalance"] = 1
    assert not stopping()  # the grace starts at the first failure seen in the rebalance
    now[0] = 19.0
    assert not stopping()
    now[0] = 20.0
    assert stopping()
    state["rebalance"], now[0] = 2, 3600.0  # the next rebalance, with no failure in between: its own grace
    assert not stopping()
    now[0] = 3619.0
    assert not stopping()
    state["rebalance"] = None
    assert not stopping()
    state["stop"] = True
    assert stopping()


def test_a_failing_call_gives_up_once_stopping_says_so():
    calls = []

    async def failing():
        calls.append(1)
        raise ConnectionError("triton down")

    with pytest.raises(Stopping, match=r"prediction still failing .* gives its partitions up \(ConnectionError"):
        asyncio.run(retry_forever("prediction", failing, stopping=lambda: len(calls) >= 2))
    assert len(calls) == 2
