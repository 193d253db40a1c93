import asyncio

import pytest

from streams.inflight import InFlight


def completion(name, log, delay):
    async def run(previous, sent):
        log.append(f"start {name}")
        await asyncio.sleep(delay)  # the model call: later batches may finish it first
        if previous is not None:
            await previous
        log.append(f"send {name}")
        sent.set_result(None)
        await asyncio.sleep(0)
        log.append(f"done {name}")

    return run


def test_batches_overlap_but_send_in_order():
    log = []

    async def main():
        inflight = InFlight(depth=3)
        for name, delay in (("a", 0.05), ("b", 0.0), ("c", 0.02)):
            await inflight.submit(completion(name, log, delay))
        await inflight.drain()

    asyncio.run(main())
    assert [e for e in log if e.startswith("start")] == ["start a", "start b", "start c"]
    assert [e for e in log if e.startswith("send")] == ["send a", "send b", "send c"]
    assert log.index("start c") < log.index("send a")  # c's model call ran while a was still waiting


def test_depth_bounds_the_batches_in_flight():
    peak = 0
    running = 0

    def tracked():
        async def run(previous, sent):
            nonlocal peak, running
            running += 1
            peak = max(peak, running)
            await asyncio.sleep(0.01)
            running -= 1

        return run

    async def main():
        inflight = InFlight(depth=2)
        for _ in range(6):
            await inflight.submit(tracked())
            assert len(inflight) <= 2
        await inflight.drain()

    asyncio.run(main())
    assert peak == 2


def test_a_failed_batch_fails_the_next_submit_and_its_successor():
    async def failing(previous, sent):
        raise RuntimeError("boom")

    waited = []

    async def follower(previous, sent):
        try:
            await previous
        except RuntimeError as exc:
            waited.append(str(exc))
            raise

    async def main():
        inflight = InFlight(depth=4)
        await inflight.submit(failing)
        await inflight.submit(follower)
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="boom"):
            await inflight.submit(failing)
        inflight.cancel()

    asyncio.run(main())
    assert waited == ["boom"]  # the successor was not left waiting forever


def test_depth_must_be_positive():
    with pytest.raises(ValueError):
        InFlight(0)
