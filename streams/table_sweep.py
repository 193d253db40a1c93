"""The user table a slice at a time, so that idle-user expiry never reads a whole table on the worker's loop
(~6 µs a user: seconds at a million users).

A slice is read at once and no iterator outlives it: between two slices faust may drop a revoked partition's RocksDB
store, and the memory store's dict may change size. RocksDB slices resume at their partition's next key (a seek);
other stores walk a snapshot of the keys taken as each pass begins (the memory store's holds a standby's users too,
as faust's own iteration of it does; `active_partitions` tells expiry which to leave).
"""

from __future__ import annotations

from typing import Any

import orjson
from faust.stores.rocksdb import Store as RocksDBStore

OFFSET_KEY = RocksDBStore.offset_key  # faust's record of the persisted changelog offset, in each partition's RocksDB


class TableSweep:
    """Passes over the table's (user id, saved value) pairs, `budget` at a time; a pass sees each user that stays in
    the table throughout once, and the next pass starts where one ends."""

    def __init__(self, table: Any) -> None:
        self.table = table  # its store (`table.data`) is read at each slice: faust creates it when the table starts
        self.passes = 0  # passes completed
        self._partition: int | None = None  # RocksDB: where the pass stands
        self._key: bytes | None = None
        self._keys: list[str] | None = None  # other stores: this pass's keys
        self._position = 0

    def active_partitions(self) -> set[int] | None:
        """The table's partitions this worker holds as active, as faust's own iteration picks them
        (`Store._dbs_for_actives`): a standby's or a revoked partition's users are another worker's to expire.
        None for a plain mapping (tests), which has no assignment."""
        store = self.table.data
        if not hasattr(store, "app"):
            return None
        topic = store.table.changelog_topic_name
        return {tp.partition for tp in store.app.assignor.assigned_actives() if tp.topic == topic}

    def next_slice(self, budget: int) -> list[tuple[str, bytes]]:
        """Up to `budget` pairs after the previous slice's; fewer when the pass ends with them."""
        store = self.table.data
        # RocksDB through rocksdict (the project's driver): python-rocksdb's stores have no `items(from_key=)`.
        if getattr(store, "use_rocksdict", False):
            return self._from_rocksdb(store, budget)
        return self._from_snapshot(store, budget)

    def _from_snapshot(self, store: Any, budget: int) -> list[tuple[str, bytes]]:
        if self._keys is None:
            self._keys, self._position = list(store.keys()), 0
        keys = self._keys[self._position : self._position + budget]
        self._position += len(keys)
        if self._position >= len(self._keys):
            self._keys = None
            self.passes += 1
        return [(key, saved) for key in keys if (saved := store.get(key)) is not None]

    def _from_rocksdb(self, store: Any, budget: int) -> list[tuple[str, bytes]]:
        actives = self.active_partitions()
        held = {partition: db for partition, db in store._dbs.items() if partition in actives}
        out: list[tuple[str, bytes]] = []
        for partition in sorted(p for p in held if self._partition is None or p >= self._partition):
            start = self._key if partition == self._partition else None
            for key, saved in held[partition].items(from_key=start):
                if key == OFFSET_KEY:
                    continue
                if len(out) == budget:
                    self._partition, self._key = partition, key  # where the next slice starts
                    return out
                out.append((orjson.loads(key), saved))  # keys as the table's json serializer wrote them
        self._partition, self._key = None, None  # the pass is over
        self.passes += 1
        return out
