"""Bounded state: users idle past the TTL leave the worker's table (and its changelog) and the online store."""

from __future__ import annotations

import asyncio
import collections
import itertools
import logging
from collections.abc import Awaitable, Callable, Container, Iterable, Sequence
from typing import Protocol

log = logging.getLogger(__name__)


class UserTable(Protocol):
    passes: int  # passes over the whole table completed

    def holds(self, user_id: str) -> bool: ...

    def expire(self, idle_s: float, budget: int, keep: Container[str] = ()) -> list[str]: ...


class IdleExpiry:
    """One round a timer tick: expire the idle users among the table's next `slice_users` (a pass over a large table
    takes several rounds), then delete their online rows on the Feast thread.

    A user whose feature row is prepared but not yet written is kept for a later round: that write could land
    after the delete and outlive the user. A delete that fails is tried again in later rounds, `slice_users` of
    them a round, for the users still gone (one who came back has a new row). Nothing awaits between those checks
    and the delete's submission, so no write can slip between them. A rebalance ends the retries: the table of a
    partition that moved holds nothing here, and another worker may already have written a returning user's new
    row.
    """

    def __init__(
        self,
        table: UserTable,
        delete: Callable[[Sequence[str]], Awaitable[None]],
        idle_s: float,
        slice_users: int,
        on_expired: Callable[[], object] = lambda: None,
    ) -> None:
        """`on_expired` runs right after the table expired users, before anything awaits (it sends their
        tombstones: a rebalance must not find them still queued)."""
        self.table = table
        self.delete = delete
        self.idle_s = idle_s
        self.slice_users = slice_users
        self.on_expired = on_expired
        self._unwritten: collections.Counter[str] = collections.Counter()
        self._undeleted: set[str] = set()
        self._rebalances = 0  # a delete that fails across a rebalance must not bring its users back for retries
        self._deleting: asyncio.Future | None = None
        self._passes = 0
        self._expired_in_pass = 0

    def preparing(self, user_ids: Iterable[str]) -> None:
        self._unwritten.update(user_ids)

    def written(self, user_ids: Iterable[str]) -> None:
        """The rows `preparing` announced are written (or given up: the worker stops)."""
        for user_id in user_ids:
            self._unwritten[user_id] -= 1
            if self._unwritten[user_id] <= 0:
                del self._unwritten[user_id]

    async def settle(self) -> None:
        """Wait for the delete on its way, if any (its outcome is `run`'s): before a rebalance hands partitions over,
        as their next owner may write a returning user's new row, which a late delete would remove."""
        if self._deleting is not None:
            await asyncio.wait([self._deleting])

    def forget_undeleted(self) -> None:
        """On a rebalance: the rows of users whose delete failed stay (in Redis until their TTL)."""
        self._undeleted.clear()
        self._rebalances += 1

    async def run(self) -> list[str]:
        """The users expired this round."""
        expired = self.table.expire(self.idle_s, self.slice_users, keep=self._unwritten)
        if expired:
            self.on_expired()
        self._expired_in_pass += len(expired)
        if self.table.passes != self._passes:  # one line a pass, not one a round
            self._passes = self.table.passes
            if self._expired_in_pass:
                log.info(
                    "expired %d users idle for over %.0f s of their partition's event time in a pass over the table",
                    self._expired_in_pass,
                    self.idle_s,
                )
            self._expired_in_pass = 0
        # Retries take a round's worth too: during an online-store outage the failed deletes pile up.
        retrying = list(itertools.islice(self._undeleted, self.slice_users))
        self._undeleted.difference_update(retrying)
        doomed = expired + [user for user in retrying if not self.table.holds(user)]
        if doomed:
            rebalances = self._rebalances
            self._deleting = asyncio.ensure_future(self.delete(doomed))
            try:
                await self._deleting
            except Exception as exc:
                retry = rebalances == self._rebalances  # else their partitions may be another worker's by now
                if retry:
                    self._undeleted.update(doomed)
                outcome = "next round" if retry else "a rebalance came meanwhile: the rows stay"
                log.warning("could not delete the online rows of %d expired users (%r); %s", len(doomed), exc, outcome)
            finally:
                self._deleting = None
        return expired
