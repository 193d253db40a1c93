import asyncio
from types import SimpleNamespace

import pytest
from aiokafka.errors import IllegalStateError
from faust.transport.drivers import aiokafka
from faust.types import TP
from faust.types.tuples import ConsumerMessage

from streams.offsets import OrderedCommitApp, OrderedCommitConsumer, next_commit

TP0 = TP("clicks", 0)


@pytest.mark.parametrize(
    ("acked", "committed", "expected"),
    [
        ([5, 6, 7], 5, (8, [])),
        ([5, 6, 7, 9, 10], 5, (8, [9, 10])),  # 8 still in flight: 9 and 10 wait for it
        ([7, 8], 5, (None, [7, 8])),  # two missing at the head: in flight, never committed past
        ([6, 7], 5, (8, [])),  # one missing at the head: a transaction marker is never delivered
        ([3, 4, 5, 5, 6, 6, 7], 5, (8, [])),  # repeats and offsets already committed
        ([3, 4], 5, (None, [])),
        ([], 5, (None, [])),
        ([2, 0, 1], None, (3, [])),  # nothing committed yet: unsorted as acknowledged
    ],
)
def test_next_commit_takes_the_run_from_the_committed_offset(acked, committed, expected):
    assert next_commit(acked, committed) == expected


@pytest.fixture
def consumer():
    consumer = OrderedCommitApp("offsets-test", broker="kafka://localhost:1").consumer  # never connects
    assert isinstance(consumer, OrderedCommitConsumer)
    return consumer


def _message(consumer, offset: int) -> ConsumerMessage:
    consumer.app.topics.acks_enabled_for = lambda topic: True  # the app has no agent; a worker's clicks are acked
    return ConsumerMessage("clicks", 0, offset, 0.0, 0, None, None, None, None)


def test_a_partition_taken_over_with_a_backlog_commits_all_its_repeated_acknowledgements(consumer):
    # The state a worker that took a partition over was found in at its stop: offsets acknowledged twice.
    acked = [40868, 40869, 40869, 40870, 40870, 40871, 40871, 40872]
    consumer._committed_offset[TP0] = 40869
    consumer._acked[TP0] = list(acked)
    consumer._acked_index[TP0] = set(acked)
    assert consumer._new_offset(TP0) == 40873
    assert consumer._acked[TP0] == [] and consumer._acked_index[TP0] == set()

    # faust's own rule stops at the first repeat, and at the next one on the next round.
    consumer._acked[TP0] = list(acked)
    assert aiokafka.Consumer._new_offset(consumer, TP0) == 40870


def test_fetch_gaps_up_to_the_highest_acknowledged_offset_count_as_acknowledged(consumer):
    """The override keeps faust's gap rule, which it carries over in its own code."""
    consumer._committed_offset[TP0] = 10
    consumer._acked[TP0] = [10, 11, 15, 17]
    consumer._acked_index[TP0] = {10, 11, 15, 17}
    consumer._gap[TP0].addi(12, 15)  # 12-14 never fetched (compacted away)
    assert consumer._new_offset(TP0) == 16
    assert consumer._acked[TP0] == [17] and consumer._acked_index[TP0] == {17}
    assert not consumer._gap[TP0]


def test_a_revocation_commits_what_was_acknowledged_before_faust_forgets_it(consumer, monkeypatch):
    seen = []

    async def commit_offsets(offsets, start_new_transaction=True):
        seen.append(("commit", dict(offsets)))
        return True

    async def app_revoked(revoked):
        seen.append(("app", list(consumer._acked.get(TP0, []))))

    async def run():
        monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
        monkeypatch.setattr(consumer, "_on_partitions_revoked", app_revoked)
        consumer._acked[TP0] = [7, 8, 9]
        consumer._commit_fut = asyncio.get_running_loop().create_future()  # a periodic commit in progress
        revoking = asyncio.ensure_future(consumer.on_partitions_revoked({TP0}))
        await asyncio.sleep(0.01)
        assert not seen  # waits for it rather than skipping its own commit
        fut, consumer._commit_fut = consumer._commit_fut, None
        fut.set_result(None)
        await revoking

    asyncio.run(run())
    # Committed first; by faust's own revocation step the acknowledgements are gone.
    assert seen == [("commit", {TP0: 10}), ("app", [])]


def test_an_acknowledgement_of_a_message_the_stream_skipped_unprocessed_does_not_count(consumer):
    skipped, processed = _message(consumer, 5), _message(consumer, 6)
    processed.tracked = True  # as faust's stream marks every message it goes on to process
    consumer._unacked_messages.add(processed)
    assert not consumer.ack(skipped) and consumer.ack(processed)
    # The skipped message is read again from the committed offset; its click counts once that copy is answered.
    assert list(consumer._acked[TP0]) == [6] and skipped.acked and not consumer._unacked_messages


def test_a_clean_stop_commits_after_a_periodic_commit_in_progress_rather_than_skipping(consumer, monkeypatch):
    committed = []

    async def commit_offsets(offsets, start_new_transaction=True):
        committed.append(dict(offsets))
        return True

    async def run():
        monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
        consumer._acked[TP0] = [3, 4]
        consumer._commit_fut = asyncio.get_running_loop().create_future()  # a periodic commit in progress
        stop = asyncio.ensure_future(consumer.commit_and_end_transactions())
        await asyncio.sleep(0.01)
        assert not committed
        fut, consumer._commit_fut = consumer._commit_fut, None
        fut.set_result(None)
        await stop

    asyncio.run(run())
    assert committed == [{TP0: 5}]


class _Broker:
    """aiokafka below faust: a fetch takes up to five records from the position, and may be held in flight (taken, not
    yet handed on); the seek to the committed offsets takes a few round trips and, as aiokafka's, moves back only a
    partition committed above 0. Records handed on are `delivered`."""

    def __init__(self, consumer, position: int, committed: int | None, end: int = 115) -> None:
        self.position, self.committed, self.end = position, committed, end
        self.fetches = 0
        self.in_flight: dict[int, object] = {}  # fetch number -> coroutine function awaited before it returns
        self.blocked: dict[int, asyncio.Event] = {}  # offset -> what its hand-on waits for (a full stream queue)
        self.delivered: list[int] = []
        self.seek_fetches: list[tuple[int, int]] = []
        self.sought_at = 0  # how many records had been handed on as the latest seek moved the position
        self.take_late = False
        self.assigned = {TP0}
        self.round_trips: int | list[int] = 10  # loop ticks the seek to the committed offsets takes (each seek's)
        self.seek_queued = 0  # loop ticks before a seek to an offset is taken
        self.sought: list[int] = []  # the offsets of seeks other than to the committed ones
        self.seek_error: Exception | None = None
        self.fetcher = SimpleNamespace(_stopped=asyncio.Event())
        consumer._getmany, consumer.callback = self.getmany, self.deliver
        consumer._thread = SimpleNamespace(seek_to_committed=self.seek_to_committed, seek_wait=self.seek_wait)
        self.consumer = consumer
        consumer.highwater = lambda tp: end

    async def getmany(self, active_partitions, timeout):
        self.fetches += 1
        in_flight = self.in_flight.get(self.fetches, _nothing)
        if self.take_late:  # the records are read at the end of the fetch's round trip rather than at its start
            await in_flight()
        taken = list(range(self.position, min(self.position + 5, self.end)))
        self.position += len(taken)
        if not self.take_late:
            await in_flight()
        if not taken:
            await asyncio.sleep(0.001)
        return {TP0: [_record(offset) for offset in taken]} if taken else {}

    async def seek_to_committed(self):
        started = self.fetches
        round_trips = self.round_trips.pop(0) if isinstance(self.round_trips, list) else self.round_trips
        await _ticks(round_trips)  # OffsetFetch
        if self.seek_error is not None:
            error, self.seek_error = self.seek_error, None
            raise error
        self.seek_fetches.append((started, self.fetches))
        if self.committed:
            self.position = self.committed
        self.sought_at = len(self.delivered)
        return {TP0: self.committed}

    async def seek_wait(self, partitions):
        await _ticks(self.seek_queued)  # aiokafka's thread takes the call after those before it
        for tp, offset in partitions.items():
            if tp not in self.assigned:
                raise IllegalStateError(f"No current assignment for partition {tp}")
            self.sought.append(offset)
            self.position = offset
            self.consumer._read_offset[tp] = offset  # as faust's, from aiokafka's thread
        await _ticks(2)

    async def deliver(self, message):
        self.delivered.append(message.offset)
        if message.offset in self.blocked:
            await self.blocked[message.offset].wait()

    def seek_during(self, fetch: int = 2, ticks: int = 5) -> list[asyncio.Task]:
        """The seeks started (a recovery's) while fetch `fetch` is in flight, which returns `ticks` loop ticks later."""
        seeks: list[asyncio.Task] = []

        async def seek_meanwhile():
            seeks.append(asyncio.ensure_future(self.consumer.perform_seek()))
            await _ticks(ticks)

        self.in_flight[fetch] = seek_meanwhile
        return seeks

    def hold(self, fetch: int) -> tuple[asyncio.Event, asyncio.Event]:
        """(set once fetch `fetch` is in flight, what releases it): aiokafka holds a fetch through a reassignment."""
        fetching, release = asyncio.Event(), asyncio.Event()

        async def held():
            fetching.set()
            await release.wait()

        self.in_flight[fetch] = held
        return fetching, release

    async def drain_while(self, action, ticks: int = 400) -> None:
        """The fetcher's drain loop, running while `action` (a coroutine function) does, and `ticks` loop ticks."""
        consumer = self.consumer
        drain = asyncio.ensure_future(consumer._drain_messages(self.fetcher))
        await action()
        await _ticks(ticks)
        self.fetcher._stopped.set()
        for event in self.blocked.values():
            event.set()
        consumer.resume_flow()  # a drain loop parked for a stopped flow sees the fetcher's stop once it goes on
        await asyncio.wait_for(drain, 5)


async def _nothing() -> None:
    pass


def _record(offset: int) -> SimpleNamespace:
    return SimpleNamespace(
        topic="clicks",
        partition=0,
        offset=offset,
        timestamp=0,
        timestamp_type=0,
        headers=[],
        key=None,
        value=b"",
        checksum=None,
        serialized_key_size=0,
        serialized_value_size=0,
    )


def _live_consumer() -> OrderedCommitConsumer:
    # Made inside the running loop: mode's waits (the drain loop's) run on the loop the service was made on.
    consumer = OrderedCommitApp("offsets-test", broker="kafka://localhost:1").consumer  # never connects
    consumer.app.topics.acks_enabled_for = lambda topic: True
    consumer._set_active_tps({TP0})
    return consumer


async def _ticks(n: int) -> None:
    for _ in range(n):
        await asyncio.sleep(0)


def _answer(consumer, *offsets: int) -> None:
    for offset in offsets:
        message = _message(consumer, offset)
        message.tracked = True
        consumer.ack(message)


async def _seek_during_fetch_2(
    committed: int | None = 100, ticks: int = 5, take_late: bool = False
) -> tuple[OrderedCommitConsumer, _Broker]:
    """A recovery's seek, started while fetch 2 (105-109, or what it reads `ticks` later when `take_late`) is in flight,
    and the drain loop until it has read to the end."""
    consumer = _live_consumer()
    broker = _Broker(consumer, position=100, committed=committed)
    broker.take_late = take_late
    seeks = broker.seek_during(ticks=ticks)
    await broker.drain_while(lambda: _ticks(0))
    await asyncio.wait_for(asyncio.gather(*seeks), 5)
    return consumer, broker


def test_records_fetched_before_the_seek_that_ends_a_recovery_are_read_again_and_count_no_offset_acknowledged():
    """faust seeks back to the committed offsets at the end of a table's recovery with the fetcher live. Handed on after
    the seek, a fetch taken before it recorded the offsets from the committed one up to its own as a gap, acknowledged
    as soon as the stream answered past its start: committed past clicks still queued."""

    consumer, broker = asyncio.run(_seek_during_fetch_2())
    assert broker.delivered == [*range(100, 105), *range(100, 115)]  # 105-109 not handed on until read again
    assert not consumer._gap[TP0]
    _answer(consumer, 100, 101, 102)  # 103 on are still queued
    assert consumer._new_offset(TP0) == 103


def test_no_fetch_starts_while_the_seek_waits_for_its_round_trips():
    _, broker = asyncio.run(_seek_during_fetch_2(ticks=0))
    assert broker.seek_fetches == [(2, 2)]  # fetches started as the round trips began, and as they ended


def test_the_seek_does_not_wait_for_a_record_held_by_a_full_queue_and_the_record_moves_no_read_offset():
    """The record in hand as the seek lands sets the read offset to its own once handed on: the re-read up to it
    was dropped as read. The seek no longer waits for it either (a stream stuck on its dependencies would hold the
    recovery, which stops the worker)."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        broker.blocked[103] = queue_full = asyncio.Event()
        landed = []

        async def seek_while_blocked():
            await _ticks(50)
            assert broker.delivered[-1] == 103
            await asyncio.wait_for(consumer.perform_seek(), 1)
            landed.append(list(broker.delivered))
            queue_full.set()

        await broker.drain_while(seek_while_blocked)
        return broker, landed

    broker, landed = asyncio.run(run())
    assert landed == [[100, 101, 102, 103]]
    assert broker.delivered == [100, 101, 102, 103, *range(100, 115)]


def test_a_partition_never_committed_reads_again_what_was_fetched_before_the_seek():
    """aiokafka moves back only partitions committed above 0: the records not handed on are sought again."""

    assert asyncio.run(_seek_during_fetch_2(committed=None))[1].delivered == list(range(100, 115))


def test_a_seek_that_fails_reads_again_what_was_set_aside_for_it():
    """Left where the fetch had taken it, the partition's next records would count those set aside as a fetch gap,
    acknowledged once answered past it."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        await consumer.perform_seek()  # an earlier seek moved the partition back
        broker.seek_error = ConnectionError("the coordinator is gone")
        seeks = broker.seek_during(ticks=5)
        await broker.drain_while(lambda: _ticks(0))
        failed = await asyncio.gather(*seeks, return_exceptions=True)
        return consumer, broker, failed

    consumer, broker, failed = asyncio.run(run())
    assert [str(error) for error in failed] == ["the coordinator is gone"] and broker.sought == [105]
    assert broker.delivered == list(range(100, 115)) and not consumer._gap[TP0]


@pytest.mark.parametrize("revoked", [False, True], ids=["reads-on-from-the-next", "revoked-left-to-its-next-owner"])
def test_a_partition_never_committed_whose_record_was_in_hand_as_the_seek_landed(revoked):
    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=None)
        broker.blocked[103] = queue_full = asyncio.Event()

        async def seek_while_blocked():
            await _ticks(50)
            await asyncio.wait_for(consumer.perform_seek(), 1)
            if revoked:
                broker.assigned = set()  # aiokafka's assignment is reset as a rebalance begins
            queue_full.set()
            await _ticks(20)
            broker.assigned = {TP0}

        await broker.drain_while(seek_while_blocked)  # raises what ended the drain loop, if anything did
        return broker

    broker = asyncio.run(run())
    assert broker.sought == ([] if revoked else [104])
    assert revoked or broker.delivered == list(range(100, 115))


def test_of_two_overlapping_seeks_the_first_failing_the_partition_is_read_again_from_where_the_second_moved_it():
    """What the failed one seeks again (forward, decided before the other landed) must not be taken after the other's
    move back: seeks run one at a time."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        await consumer.perform_seek()
        broker.seek_error = ConnectionError("the coordinator is gone")
        broker.round_trips, broker.seek_queued = [10, 10], 6
        seeks = broker.seek_during(ticks=3)

        async def second_seek():
            while not seeks:
                await asyncio.sleep(0)
            await _ticks(3)
            seeks.append(asyncio.ensure_future(consumer.perform_seek()))

        await broker.drain_while(second_seek)
        await asyncio.gather(*seeks, return_exceptions=True)
        return broker

    broker = asyncio.run(run())
    assert broker.delivered[broker.sought_at :] == list(range(100, 115))


def test_the_seek_waits_for_a_fetch_in_flight_no_longer_once_a_revocation_stops_the_flow():
    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        fetching, assigned = broker.hold(2)

        async def seek_then_stop():
            await fetching.wait()
            seek = asyncio.ensure_future(consumer.perform_seek())
            await _ticks(20)
            assert not seek.done()
            consumer.stop_flow()
            await asyncio.wait_for(seek, 1)
            assigned.set()

        await broker.drain_while(seek_then_stop, ticks=20)
        return broker

    # The seek landed during fetch 2; faust's own followed once that fetch found the flow stopped.
    assert asyncio.run(run()).seek_fetches == [(2, 2), (2, 2)]


async def _seek_through_a_held_fetch(seek_error: Exception | None = None) -> _Broker:
    """The recovery's seek runs with the flow stopped while aiokafka holds fetch 2; released after the flow resumes,
    that fetch reads from where the seek moved the position (100). `seek_error` fails the seeks after it."""
    consumer = _live_consumer()
    broker = _Broker(consumer, position=100, committed=100)
    broker.take_late = True
    fetching, assigned = broker.hold(2)

    async def rebalance():
        await fetching.wait()
        consumer.stop_flow()
        await asyncio.wait_for(consumer.perform_seek(), 1)
        broker.seek_error = seek_error
        consumer.resume_flow()
        assigned.set()

    await broker.drain_while(rebalance)  # raises what ended the drain loop, if anything did
    return broker


def test_a_fetch_in_flight_through_a_seek_with_the_flow_stopped_is_not_handed_on_and_the_seek_is_done_again():
    """The seek at the end of a recovery can run before the flow resumes, not waiting for a fetch that aiokafka held
    through the rebalance: returning after it, that fetch may have read from the position the seek set."""
    broker = asyncio.run(_seek_through_a_held_fetch())
    assert len(broker.seek_fetches) == 2
    assert broker.delivered[broker.sought_at :] == list(range(100, 115))


def test_a_seek_done_again_for_a_fetch_in_flight_that_fails_leaves_the_drain_loop_running():
    broker = asyncio.run(_seek_through_a_held_fetch(AssertionError("No partitions are currently assigned")))
    assert broker.seek_error is None  # the second seek was tried, and failed


def test_a_seek_done_again_for_a_fetch_in_flight_is_done_once():
    """A later batch set aside for a seek that landed as it was handed on is read again without another seek."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100, end=100)  # the fetch in flight brings nothing
        fetching, assigned = broker.hold(2)

        async def rebalance_then_seek():
            await fetching.wait()
            consumer.stop_flow()
            await asyncio.wait_for(consumer.perform_seek(), 1)
            consumer.resume_flow()
            assigned.set()
            await _ticks(20)
            broker.end = 115
            broker.blocked[102] = queue_full = asyncio.Event()
            await _ticks(50)
            await asyncio.wait_for(consumer.perform_seek(), 1)  # lands while 102 is handed on
            queue_full.set()

        await broker.drain_while(rebalance_then_seek)
        return broker

    broker = asyncio.run(run())
    assert len(broker.seek_fetches) == 2
    assert broker.delivered[broker.sought_at :] == list(range(100, 115))


@pytest.mark.parametrize(
    ("revoked", "failed"), [(False, False), (True, False), (True, True)], ids=["cancelled", "revoked", "revoked-failed"]
)
def test_a_seek_a_rebalance_ends_leaves_what_was_set_aside_for_it_to_the_rebalance(monkeypatch, revoked, failed):
    """Set aside by the first generation, the records' offsets would be sought again in the next, where the partition
    is read from its committed offset (or is another worker's). faust's recovery cancels its seek once the partitions
    are assigned again; a seek under way as they are revoked can also fail."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        broker.round_trips = 200
        seeks = broker.seek_during(ticks=3)

        async def app_revoked(revoked):
            consumer.stop_flow()

        async def commit_offsets(offsets, start_new_transaction=True):
            return True

        monkeypatch.setattr(consumer, "_on_partitions_revoked", app_revoked)
        monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)

        async def cancel():
            await _ticks(30)  # fetch 2 was set aside for the seek, still in its round trips
            assert consumer._unhanded == {TP0: (105, 0)}
            if revoked:
                await consumer.on_partitions_revoked({TP0})
            if failed:
                broker.seek_error = IllegalStateError("the assignment changed")
            else:
                seeks[0].cancel()

        await broker.drain_while(cancel, ticks=50)
        await asyncio.gather(*seeks, return_exceptions=True)
        return consumer, broker

    consumer, broker = asyncio.run(run())
    assert consumer._unhanded == {} and broker.sought == []


def test_the_seek_waits_for_a_fetch_in_flight_which_may_read_from_the_position_it_sets():
    """A fetch in flight as aiokafka moves the position back may return the records from there: taken as fetched
    before the seek and not handed on, they were never read again."""

    _, broker = asyncio.run(_seek_during_fetch_2(ticks=30, take_late=True))
    assert set(broker.delivered[broker.sought_at :]) == set(range(100, 115))


def test_fausts_own_seek_from_a_fetch_that_found_the_flow_stopped_reads_on():
    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)

        async def stop_meanwhile():  # the flow stops while fetch 2 is in flight: faust seeks from the drain loop
            consumer.stop_flow()

        async def resume_and_seek():
            await _ticks(50)
            consumer.resume_flow()
            await asyncio.wait_for(consumer.perform_seek(), 1)

        broker.in_flight[2] = stop_meanwhile
        await broker.drain_while(resume_and_seek)
        return broker

    broker = asyncio.run(run())
    assert len(broker.seek_fetches) == 2
    assert set(broker.delivered[broker.sought_at :]) == set(range(100, 115))


def test_a_partition_back_after_a_revocation_is_read_again_from_its_committed_offset(monkeypatch):
    """The record in hand when a revocation stops the flow writes its offset back as read after faust forgot the
    partition; back in the next generation, the partition's records up to it were dropped as read, never answered."""

    async def run():
        consumer = _live_consumer()
        broker = _Broker(consumer, position=100, committed=100)
        broker.blocked[106] = asyncio.Event()

        async def app_revoked(revoked):  # faust's App._on_partitions_revoked stops the flow first
            consumer.stop_flow()
            await _ticks(5)

        async def app_assigned(assigned, generation_id):
            pass

        async def commit_offsets(offsets, start_new_transaction=True):
            broker.committed = offsets[TP0]
            return True

        monkeypatch.setattr(consumer, "_on_partitions_revoked", app_revoked)
        monkeypatch.setattr(consumer, "_on_partitions_assigned", app_assigned)
        monkeypatch.setattr(consumer, "_commit_offsets", commit_offsets)
        consumer.app.on_rebalance_return = lambda: None

        async def rebalance():
            await _ticks(100)
            assert broker.delivered[-1] == 106
            _answer(consumer, 100, 101, 102)
            await consumer.on_partitions_revoked({TP0})
            await _ticks(20)
            assert broker.committed == 103
            del broker.delivered[:]
            broker.blocked[106].set()
            broker.position = broker.committed  # a new assignment starts at the committed offset
            consumer.app.consumer_generation_id += 1
            await consumer.on_partitions_assigned({TP0}, 1)
            consumer._set_active_tps({TP0})
            consumer.resume_flow()

        await broker.drain_while(rebalance, ticks=300)
        return broker

    assert asyncio.run(run()).delivered[:3] == [103, 104, 105]
