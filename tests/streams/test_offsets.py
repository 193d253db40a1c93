import asyncio

import pytest
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
