"""The offsets a worker commits for its clicks: two mends of faust's consumer, each measured on the dev stack.

faust-streaming (0.15) computes a partition's offset to commit from the offsets its messages were acknowledged at: the
run of consecutive offsets at the head of that list. The list can hold an offset twice: a message fetched before the
seek that follows an assignment is acknowledged unprocessed (faust skips it while its flow is paused), then fetched
again and acknowledged once processed; an offset can also be both acknowledged and filled in as a fetch gap. The run
then ends at the first repeat, so the commit advances an offset or two a round (the stall of robinhood/faust#625).
Measured here, a worker that took partitions over with a backlog (a scale-in, a restart behind) still left 130-670
clicks uncommitted at its clean stop, for the next worker to read and answer again, which then fell behind the same way.

And faust forgets what was acknowledged on revoked partitions before its revocation commits: each handover re-answered
the clicks since the last periodic commit.
"""

from __future__ import annotations

import faust
from faust.transport.drivers import aiokafka
from faust.types import TP, TransportT


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

    async def on_partitions_revoked(self, revoked: set[TP]) -> None:
        # Committed before faust forgets them: their next owner reads again only the clicks still in flight, not every
        # click since the last periodic commit.
        await self.commit(revoked)
        await super().on_partitions_revoked(revoked)


class Transport(aiokafka.Transport):
    Consumer = OrderedCommitConsumer


class OrderedCommitApp(faust.App):
    """A faust app whose consumer commits by `next_commit`."""

    def _new_transport(self) -> TransportT:
        return Transport(self.conf.broker_consumer, self)
