"""The offsets a worker commits for its clicks: mends of faust-streaming's (0.15) consumer.

faust commits, per partition, the run of consecutive offsets at the head of the list of offsets its messages were
acknowledged at. That list can hold an offset twice: after the seek that follows an assignment moves the read position
back to the committed offset, messages fetched before it still arrive, and each counts as a fetch gap that includes its
own offset, which is acknowledged again when read. The run then ends at the first repeat, so the commit advanced an
offset or two a round (the stall of robinhood/faust#625). Measured here, a worker that took partitions over with a
backlog (a scale-in, a restart behind) left 130-670 clicks uncommitted at its clean stop, for the next worker to answer
again, which then fell behind the same way. Repeats are dropped now (`next_commit`).

Messages faust's stream skips unprocessed (taken while its flow is stopped, or from an earlier generation) are
acknowledged too; those acknowledgements no longer count toward a commit. A revocation commits what was acknowledged
before faust forgets it (a handover re-answered every click since the last periodic commit), and neither it nor a clean
stop's last commit is skipped for a periodic commit in progress. faust's fetch-gap rule is kept (offsets the fetcher
never saw, up to the highest acknowledged, count as acknowledged, so transaction markers do not hold commits back).

The seek back to the committed offsets that ends a table's recovery runs while the fetcher is live. In faust a record
fetched before it but handed on after it records as a gap the offsets from the committed one up to its own, which then
count as acknowledged while still queued or unread; and a record in hand as the seek lands sets the read position past
the re-read, whose records are then dropped as read. Now one seek runs at a time; it waits for a fetch in flight (which
could read from the position it sets), unless the flow is stopped (aiokafka holds such a fetch through a rebalance:
returning after the seek, it is not handed on and the seek is done again), and no fetch starts while it runs. What is
left of a batch fetched before it is not handed on but read again: aiokafka moves back only partitions committed above
0, and the others (all, if the seek fails) are sought to the first record left. The record in hand as it lands leaves no
read position behind. Neither does the record in hand when a revocation stops the flow, which writes one back after
faust forgot the partition: an assignment forgets it again, for the case the recovery's seek, which resets them, does
not land. The seek never waits for the stream to take a record: a stream held by its dependencies would hold the
recovery too, and the worker stops when a rebalance does not end.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import faust
from aiokafka.errors import IllegalStateError
from faust.transport.consumer import RecordMap
from faust.transport.drivers import aiokafka
from faust.types import TP, Message, TransportT
from faust.types.tuples import ack_lock


def next_commit(acked: list[int], committed: int | None) -> tuple[int | None, list[int]]:
    """(the offset to commit, or None; the acknowledged offsets left), from a partition's acknowledged offsets and
    its committed offset (the next to read). Repeats and offsets already committed are dropped. As in faust, one
    offset missing at the head does not hold the commit back: a transaction marker is never delivered, and a click
    still in flight there keeps every later click of its partition unacknowledged too (acknowledgements run in arrival
    order, `streams.inflight`), so nothing after it is in the list to commit past it."""
    fresh = sorted({offset for offset in acked if committed is None or offset >= committed})
    if not fresh or (committed is not None and fresh[0] - committed > 1):
        return None, fresh
    end = 0
    while end + 1 < len(fresh) and fresh[end + 1] == fresh[end] + 1:
        end += 1
    return fresh[end] + 1, fresh[end + 1 :]


class OrderedCommitConsumer(aiokafka.Consumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._seeks = 0  # seeks waiting or running
        self._seeks_done = asyncio.Event()
        self._seeks_done.set()
        self._fetched = asyncio.Event()  # no fetch in flight
        self._fetched.set()
        self._seek_count = 0  # seeks landed: a batch fetched before the latest one is read again
        self._fetch_seeks = 0  # the count as the batch being handed on was fetched
        # One seek at a time, with what it seeks again: aiokafka's thread takes the calls in order, and one seek's move
        # back must not run before another's seek forward that was decided before it landed.
        self._seeking = asyncio.Lock()
        self._moved_back: set[TP] = set()  # the partitions the latest landed seek moved back to their committed offsets
        self._committed_back: set[TP] = set()  # those the seek in progress found committed above 0
        self._straddled = False  # a fetch was in flight as the latest seek landed (its flow stopped)
        # Per partition, the first offset of records set aside for a seek to come, and the count as they were fetched.
        self._unhanded: dict[TP, tuple[int, int]] = {}

    def _new_offset(self, tp: TP) -> int | None:
        acked = self._acked[tp]
        if not acked:
            return None
        gaps = self._gap[tp]
        # faust's own rule: offsets the fetcher never saw, up to the highest acknowledged, count as acknowledged.
        if gaps:
            top = max(acked)
            spans = sorted(gaps.overlap(0, top), key=lambda span: span.begin)
            if spans:
                filled = [offset for span in spans for offset in range(span.begin, span.end)]
                acked.extend(filled)
                gaps.chop(0, max(filled[-1], top + 1))
        offset, left = next_commit(acked, self._committed_offset[tp])
        acked[:] = left
        self._acked_index[tp].intersection_update(left)
        return offset

    def ack(self, message: Message) -> bool:
        # faust's stream skips a message it takes while its flow is stopped (a revocation, an assignment recovering) or
        # from an earlier generation, and acknowledges it unprocessed; such a message was never tracked, as every
        # processed one is. Counted, its offset could be committed past a click nobody answered.
        if not message.tracked:
            with ack_lock:
                message.acked = True
            return False
        return super().ack(message)

    async def _wait_next_records(self, timeout: float) -> tuple[RecordMap | None, set[TP] | None]:
        # No await between the checks and the clear: a seek either finds the fetch in flight, or holds it back.
        while not self.should_stop:
            if not self.flow_active:
                await self.wait(self.can_resume_flow)
            elif self._seeks:
                await self.wait(self._seeks_done)
            else:
                break
        self._fetch_seeks = self._seek_count
        self._fetched.clear()
        try:
            return await super()._wait_next_records(timeout)
        finally:
            self._fetched.set()

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        records = super().getmany(timeout)
        async for tp, message in records:
            if self._seeks or self._seek_count != self._fetch_seeks:
                # Fetched before a seek: not handed on, but read again after it.
                unhanded = {tp: (message.offset, self._fetch_seeks)}
                async for tp, message in records:
                    unhanded.setdefault(tp, (message.offset, self._fetch_seeks))
                if self._seeks or self._straddled:
                    # A seek to come reads them again as it lands, or fails. A fetch in flight as the seek landed may
                    # have read from the position it set, or before: as faust does with a fetch that found the flow
                    # stopped, nothing was handed on since, so the seek is done again.
                    for tp, entry in unhanded.items():
                        self._unhanded[tp] = min(entry, self._unhanded.get(tp, entry))
                    if not self._seeks:
                        try:
                            await self.perform_seek()
                        except Exception as exc:  # as faust's own seek here: a rebalance that began resets positions
                            self.log.warning("seeking to the committed offsets again failed: %r", exc)
                else:
                    async with self._seeking:
                        await self._read_again(unhanded)
                return
            seeks = self._seek_count
            yield tp, message
            if self._seek_count != seeks:
                # The seek landed while this record was handed on, and the drain loop then set the read offset to it:
                # none reads every record from where the seek left the position (nothing fetched before it follows).
                self._read_offset[tp] = None

    async def seek_to_committed(self) -> Mapping[TP, int]:
        committed = await super().seek_to_committed()
        # aiokafka moves back only the partitions with a committed offset above 0.
        self._committed_back = {tp for tp, offset in committed.items() if offset and offset > 0}
        return committed

    async def perform_seek(self) -> None:
        self._seeks += 1
        self._seeks_done.clear()
        try:
            async with self._seeking:
                try:
                    # aiokafka holds a fetch in flight through a rebalance until the next assignment: not waited for
                    # with the flow stopped, it is told apart once it returns.
                    await self.wait_first(self._fetched, self.suspend_flow)
                    self._straddled = not self._fetched.is_set()
                    await super().perform_seek()
                    self._moved_back, self._seek_count = self._committed_back, self._seek_count + 1
                except asyncio.CancelledError:
                    # A rebalance, or the worker stopping: the partitions are read from their committed offsets then.
                    self._unhanded.clear()
                    raise
                finally:
                    # Also if it failed. No fetch starts before it is done, so no batch is set aside meanwhile.
                    unhanded, self._unhanded = self._unhanded, {}
                    await self._read_again(unhanded)
        finally:
            self._seeks -= 1
            if not self._seeks:
                self._seeks_done.set()

    async def _read_again(self, unhanded: dict[TP, tuple[int, int]]) -> None:
        """Seek the partitions to the first offsets of records fetched but not handed on, unless a seek that landed
        since they were fetched moved them back (aiokafka leaves a partition not committed above 0 where it is)."""
        for tp, (offset, fetched_at) in unhanded.items():
            if fetched_at < self._seek_count and tp in self._moved_back:
                continue
            # Revoked meanwhile (IllegalStateError): its next owner reads it from the committed offset.
            with contextlib.suppress(IllegalStateError):
                await self.seek_wait({tp: offset})  # in aiokafka's thread, as faust's recovery seeks

    async def on_partitions_assigned(self, assigned: set[TP], generation_id: int = 0) -> None:
        for tp in assigned:
            self._read_offset.pop(tp, None)  # written back by the record in hand at the revocation
        await super().on_partitions_assigned(assigned, generation_id)

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Committed before faust forgets them: their next owner reads again only the clicks still in flight, not every
        # click since the last periodic commit.
        await self._wait_for_commits()
        await self.commit(revoked)
        await super().on_partitions_revoked(revoked)
        # Set aside for a seek the rebalance cancels once the partitions are assigned again, maybe from another offset;
        # faust's handler stopped the flow, so no more are.
        self._unhanded.clear()

    async def commit_and_end_transactions(self) -> None:
        # A clean stop's last commit, likewise not skipped.
        await self._wait_for_commits()
        await super().commit_and_end_transactions()

    async def _wait_for_commits(self) -> None:
        """Until no commit is in progress: `commit` returns at once, committing nothing, while another one runs."""
        while await self.maybe_wait_for_commit_to_finish():
            pass


class Transport(aiokafka.Transport):
    Consumer = OrderedCommitConsumer


class OrderedCommitApp(faust.App):
    """A faust app whose consumer commits by `next_commit`."""

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)
