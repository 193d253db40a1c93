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
stop's last commit is skipped for a periodic commit in progress. faust's fetch-gap rule is kept as it is (offsets the
fetcher never saw, up to the highest acknowledged, count as acknowledged), though a fetched batch that straddles the
seek after an assignment can record as a gap offsets not yet processed.
"""

from __future__ import annotations

import faust
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

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Committed before faust forgets them: their next owner reads again only the clicks still in flight, not every
        # click since the last periodic commit.
        await self._wait_for_commits()
        await self.commit(revoked)
        await super().on_partitions_revoked(revoked)

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
