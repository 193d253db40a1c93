import asyncio

import pytest

from streams.inflight import InFlight


class Recorder:
    """start(): records the batch at once (the synchronous part); the completion waits `delay[name]`."""

    def __init__(self, delays=None, delivery=None):
        self.delays = delays or {}
        self.delivery = delivery or {}
        self.log: list[str] = []
        self.batches: list[list] = []

    def start(self, batch):
        name = "+".join(batch)
        self.batches.append(list(batch))
        self.log.append(f"start {name}")

        async def completion(previous, sent):
            await asyncio.sleep(self.delays.get(name, 0.01))  # the model call
            if previous is not None:
                await previous
            self.log.append(f"send {name}")
            sent.set_result(None)
            await asyncio.sleep(self.delivery.get(name, 0.0))  # the broker's acknowledgement
            return lambda: self.log.append(f"ack {name}")

        return completion


def test_an_idle_pipeline_starts_each_arrival_at_once_and_sends_in_order():
    rec = Recorder({"a": 0.05, "b": 0.0, "c": 0.02})

    async def main():
        inflight = InFlight(rec.start, depth=3, batch_max=8)
        for name in "abc":
            await inflight.add([name])
        await inflight.drain()

    asyncio.run(main())
    assert rec.batches == [["a"], ["b"], ["c"]]
    assert [e for e in rec.log if e.startswith("send")] == ["send a", "send b", "send c"]
    assert rec.log.index("start c") < rec.log.index("send a")  # c's model call overlapped a's


def test_a_batch_delivered_early_acknowledges_after_the_one_before_it():
    # b's answers reach the broker first (another output partition); its input must still be acknowledged after a's.
    rec = Recorder(delays={"a": 0.0, "b": 0.0}, delivery={"a": 0.05, "b": 0.0})

    async def main():
        inflight = InFlight(rec.start, depth=2, batch_max=1)
        for name in "ab":
            await inflight.add([name])
        await inflight.drain()

    asyncio.run(main())
    assert [e for e in rec.log if e.startswith(("send", "ack"))] == ["send a", "send b", "ack a", "ack b"]


def test_a_failed_batch_keeps_its_successor_from_acknowledging():
    acked = []

    def start(batch):
        async def completion(previous, sent):
            sent.set_result(None)
            if batch == ["bad"]:
                await asyncio.sleep(0.02)  # fails after its successor was delivered
                raise RuntimeError("delivery failed")
            return lambda: acked.extend(batch)

        return completion

    async def main():
        inflight = InFlight(start, depth=2, batch_max=1)
        await inflight.add(["bad"])
        await inflight.add(["next"])
        with pytest.raises(RuntimeError, match="delivery failed"):
            await inflight.drain()
        inflight.cancel()

    asyncio.run(main())
    assert acked == []  # "next" stays unacknowledged: the group hands both clicks out again


def test_events_carried_while_every_slot_is_busy_start_as_one_batch():
    rec = Recorder({"a": 0.05})

    async def main():
        inflight = InFlight(rec.start, depth=1, batch_max=3)
        await inflight.add(["a"])
        for name in "bcdef":  # arrive while a is in flight
            await inflight.add([name])
        await inflight.drain()

    asyncio.run(main())
    assert rec.batches == [["a"], ["b", "c", "d"], ["e", "f"]]  # batch_max caps a batch


def test_backpressure_bounds_what_is_carried():
    rec = Recorder({"a": 0.02})

    async def main():
        inflight = InFlight(rec.start, depth=1, batch_max=2)
        await inflight.add(["a"])
        peak = 0
        for name in "bcdefg":
            await inflight.add([name])
            peak = max(peak, inflight.carried)
            assert len(inflight) <= 1
        await inflight.drain()
        return peak

    assert asyncio.run(main()) < 2  # add returns only once less than a full batch (batch_max) is carried
    assert [x for batch in rec.batches for x in batch] == list("abcdefg")  # nothing lost, order kept


def test_a_failed_batch_fails_its_successor_and_the_next_add():
    waited = []

    def start(batch):
        async def completion(previous, sent):
            if batch == ["bad"]:
                raise RuntimeError("boom")
            try:
                await previous
            except RuntimeError as exc:
                waited.append(str(exc))
                raise

        return completion

    async def main():
        inflight = InFlight(start, depth=4, batch_max=1)
        await inflight.add(["bad"])
        await inflight.add(["next"])
        await asyncio.sleep(0.01)
        with pytest.raises(RuntimeError, match="boom"):
            await inflight.add(["later"])
        inflight.cancel()

    asyncio.run(main())
    assert waited == ["boom"]  # the successor was not left waiting forever


def test_an_error_while_starting_a_batch_surfaces_on_add():
    def start(batch):
        raise ValueError("state store down")

    async def main():
        inflight = InFlight(start, depth=2, batch_max=4)
        with pytest.raises(ValueError, match="state store down"):
            await inflight.add(["x"])
            await inflight.add(["y"])

    asyncio.run(main())


def test_a_failure_is_reported_at_once_even_if_nothing_more_arrives():
    # The batch that fails is started from a completion callback, after the last `add`: only `on_error` hears.
    failures = []

    def start(batch):
        if "bad" in batch:
            raise ValueError("bad click")
        return Recorder().start(batch)

    async def main():
        inflight = InFlight(start, depth=1, batch_max=4, on_error=failures.append)
        for name in ["a", "b", "bad", "c"]:
            await inflight.add([name])
        for _ in range(50):
            if failures:
                break
            await asyncio.sleep(0.01)
        inflight.cancel()

    asyncio.run(main())
    assert [str(f) for f in failures] == ["bad click"]  # reported once, though carried clicks stay undone


def test_drain_raises_when_a_batch_failed_to_start_while_more_was_carried():
    def start(batch):
        raise ValueError("state store down")

    async def main():
        inflight = InFlight(start, depth=1, batch_max=1)
        with pytest.raises(ValueError):
            await inflight.add(["x", "y"])  # x fails to start; y stays carried, with no task in flight
        with pytest.raises(ValueError, match="state store down"):
            await asyncio.wait_for(inflight.drain(), 1)  # it waited for a task that would never come

    asyncio.run(main())


def test_limits_must_be_positive():
    with pytest.raises(ValueError):
        InFlight(lambda batch: None, depth=0, batch_max=1)
