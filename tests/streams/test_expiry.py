"""IdleExpiry: which users lose their online rows, and when."""

import asyncio

from streams.expiry import IdleExpiry

SLICE = 100  # users a round reads


class FakeTable:
    """Users with their idle flag; `expire` removes the idle ones not kept."""

    def __init__(self, idle: set[str], active: set[str]) -> None:
        self.idle, self.active = set(idle), set(active)
        self.budgets: list[int] = []
        self.idle_s: list[float] = []
        self.passes = 0

    def holds(self, user_id: str) -> bool:
        return user_id in self.idle or user_id in self.active

    def expire(self, idle_s: float, budget: int, keep=()) -> list[str]:
        self.budgets.append(budget)
        self.idle_s.append(idle_s)
        gone = sorted(u for u in self.idle if u not in keep)
        self.idle -= set(gone)
        return gone


class Deleter:
    def __init__(self, failures: int = 0) -> None:
        self.failures, self.calls = failures, []

    async def __call__(self, users) -> None:
        self.calls.append(sorted(users))
        if self.failures:
            self.failures -= 1
            raise ConnectionError("store down")


def test_idle_users_are_expired_and_their_rows_deleted():
    table, delete = FakeTable({"a", "b"}, {"c"}), Deleter()
    assert asyncio.run(IdleExpiry(table, delete, 10.0, SLICE).run()) == ["a", "b"]
    assert delete.calls == [["a", "b"]]
    assert table.budgets == [SLICE] and table.idle_s == [10.0]


def test_a_user_with_an_unwritten_row_waits_for_a_later_round():
    table, delete = FakeTable({"a", "b"}, set()), Deleter()
    expiry = IdleExpiry(table, delete, 10.0, SLICE)
    expiry.preparing(["a", "a"])  # two batches carry a row of a
    assert asyncio.run(expiry.run()) == ["b"]
    expiry.written(["a"])
    assert asyncio.run(expiry.run()) == []  # one row of a is still on its way
    expiry.written(["a"])
    assert asyncio.run(expiry.run()) == ["a"]
    assert delete.calls == [["b"], ["a"]]


def test_a_failed_delete_is_retried_for_users_still_gone_only():
    table, delete = FakeTable({"a", "b"}, set()), Deleter(failures=1)
    expiry = IdleExpiry(table, delete, 10.0, SLICE)
    asyncio.run(expiry.run())  # the delete of a and b fails
    table.active.add("b")  # b came back: its new row must stay
    asyncio.run(expiry.run())
    asyncio.run(expiry.run())
    assert delete.calls == [["a", "b"], ["a"]]


def test_a_rebalance_ends_the_retries():
    table, delete = FakeTable({"a"}, set()), Deleter(failures=1)
    expiry = IdleExpiry(table, delete, 10.0, SLICE)
    asyncio.run(expiry.run())  # the delete of a fails
    expiry.forget_undeleted()  # a's partition may have moved: another worker may hold a new row of a
    asyncio.run(expiry.run())
    assert delete.calls == [["a"]]


def test_tombstones_are_sent_as_soon_as_users_expire_before_the_delete_awaits():
    table, events = FakeTable({"a"}, {"c"}), []

    async def delete(users) -> None:
        events.append(("delete", sorted(users)))

    expiry = IdleExpiry(table, delete, 10.0, SLICE, on_expired=lambda: events.append("tombstones"))
    asyncio.run(expiry.run())
    asyncio.run(expiry.run())  # nobody expires: nothing to send
    assert events == ["tombstones", ("delete", ["a"])]


def test_a_delete_that_fails_across_a_rebalance_is_not_retried():
    table = FakeTable({"a"}, set())
    calls = []

    async def delete(users) -> None:
        calls.append(sorted(users))
        if len(calls) == 1:
            expiry.forget_undeleted()  # a rebalance while the first delete was on its way
            raise ConnectionError("store down")

    expiry = IdleExpiry(table, delete, 10.0, SLICE)
    asyncio.run(expiry.run())
    asyncio.run(expiry.run())
    assert calls == [["a"]]


def test_failed_deletes_are_retried_a_round_of_users_at_a_time():
    """During an online-store outage the users to retry pile up: a round retries at most its slice of them."""
    table, delete = FakeTable({"a", "b", "c"}, set()), Deleter(failures=1)
    expiry = IdleExpiry(table, delete, 10.0, 2)
    for _ in range(3):
        asyncio.run(expiry.run())
    assert [len(users) for users in delete.calls] == [3, 2, 1]


def test_settle_waits_for_the_delete_on_its_way():
    table, released = FakeTable({"a"}, set()), []

    async def scenario() -> list[str]:
        gate = asyncio.Event()

        async def delete(users) -> None:
            await gate.wait()
            released.append("deleted")
            raise ConnectionError("store down")  # its outcome stays run()'s: settle() does not raise it

        expiry = IdleExpiry(table, delete, 10.0, SLICE)
        round_ = asyncio.ensure_future(expiry.run())
        await asyncio.sleep(0)  # the delete is on its way
        settling = asyncio.ensure_future(expiry.settle())
        await asyncio.sleep(0.01)
        assert not settling.done()
        gate.set()
        await settling
        assert released == ["deleted"]
        await round_
        await expiry.settle()  # nothing on its way: returns at once
        return released

    assert asyncio.run(scenario()) == ["deleted"]
