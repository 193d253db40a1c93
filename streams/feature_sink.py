"""Writes micro-batches of user features to the Feast online store without blocking the event loop."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

from streams.processor import FeatureRow
from streams.settings import Settings


class FeastSink:
    """All Feast calls run on one dedicated thread: the SQLite store's connection is not shareable
    across threads, and one writer keeps a user's rows in order."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="feast")
        self._writer = None

    def open(self) -> None:
        """Connect and apply the definitions (seconds: Feast's import); done before joining the group."""
        self._executor.submit(self._open).result()

    def _open(self) -> None:
        from features.store import apply_definitions, build_store
        from features.writers import open_writer

        store = build_store(self.settings)
        apply_definitions(store)
        self._writer = open_writer(store)

    async def write(self, rows: Sequence[FeatureRow]) -> None:
        if rows:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.write, rows)

    async def delete(self, user_ids: Sequence[str]) -> None:
        """On the same thread as the writes, so it lands after every write submitted before it."""
        if user_ids:
            await asyncio.get_running_loop().run_in_executor(self._executor, self._writer.delete, user_ids)

    def close(self) -> None:
        if self._writer is not None:
            self._executor.submit(self._writer.close).result()
        self._executor.shutdown(wait=True)
