"""How long an idle-user expiry round holds the worker's loop, against reading the whole table at once (what each
round did before rounds read slices).

`clickcast bench expiry` writes a RocksDB table store of synthetic users in the worker's own state format (a tenth
of them idle past the TTL), then times a read of the whole table and each round of one pass over it.
"""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import orjson

from features.history import UserHistory, Visit
from streams.app import TableState
from streams.table_sweep import OFFSET_KEY
from streams.testing import RocksStore

PARTITIONS = 4
TTL_S = 365 * 86400.0
T0 = 1333324800.0  # 2012-04-02


def _state(user: int, events: int, partition: int) -> bytes:
    newest = T0 + 2 * TTL_S if user % 10 else T0  # every tenth user idle past the TTL
    history = UserHistory(retention_s=10 * TTL_S)
    for i in range(events):
        ts = newest - (events - 1 - i) * 3600.0
        history.add(Visit(f"u{user}e{i}", ts, f"poi{(user + i) % 500}", 40.7 + i * 1e-3, -74.0 + user % 100 * 1e-3))
    return orjson.dumps({**history.to_state(), "partition": partition})


def _whole_table(store: RocksStore) -> int:
    """The former round's read: every user decoded, for its partition and newest event time."""
    users = []
    for db in store._dbs.values():
        for key, saved in db.items():
            if key != OFFSET_KEY:
                value = orjson.loads(saved)
                users.append((orjson.loads(key), value["partition"], UserHistory.newest_ts_of_state(value)))
    return len(users)


def run(users: int, events: int, slice_users: int, progress: Callable[[str], None]) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        store = RocksStore(Path(tmp), range(PARTITIONS))
        try:
            for user in range(users):
                store.put(user % PARTITIONS, f"user{user}", _state(user, events, user % PARTITIONS))
                if (user + 1) % max(1, users // 10) == 0:
                    progress(f"written {user + 1:,} of {users:,} users")
            start = time.perf_counter()
            read = _whole_table(store)
            whole_ms = (time.perf_counter() - start) * 1e3
            progress(f"whole table: {read:,} users in {whole_ms:.0f} ms")
            state = TableState(SimpleNamespace(data=store), RocksStore.CHANGELOG)
            rounds, expired = [], 0
            while state.passes == 0:
                start = time.perf_counter()
                expired += len(state.expire(TTL_S, slice_users))
                rounds.append((time.perf_counter() - start) * 1e3)
            progress(f"one pass: {len(rounds)} rounds, {expired:,} users expired")
        finally:
            store.close()
    return {
        "users": users,
        "events_per_user": events,
        "slice_users": slice_users,
        "whole_table_ms": round(whole_ms, 3),
        "rounds": len(rounds),
        "round_ms": {"p50": round(statistics.median(rounds), 3), "max": round(max(rounds), 3)},
        "expired": expired,
    }
