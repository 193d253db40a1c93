"""Feast's SQLite online table, written with multi-row upserts, one transaction per micro-batch.

Feast's own `online_write_batch` runs one statement per (user, feature) from Python; this writes the
same rows (entity key, feature name, serialized Value, value_text, event_ts) as a few multi-row
`INSERT ... VALUES (...), (...) ON CONFLICT DO UPDATE` statements, and skips rows older than what is stored.
Multi-row, not `executemany`: Python's sqlite3 releases and retakes the GIL around every statement step, and
in a busy worker each retake waits for the event loop's thread (up to the 5 ms switch interval). With one step
per (user, feature) a write of a few hundred users took ~130 ms inside the worker at 500 events/s; now ~16 ms.
"""

from __future__ import annotations

import logging
import sqlite3
import time
from datetime import UTC, datetime
from pathlib import Path

from features.writers.base import OnlineWriter, Row

log = logging.getLogger(__name__)

PARAMS_PER_ROW = 5
# Rows (user x feature) per statement, at most: a batch of ~100 users goes as one statement. Lowered to the
# build's bound-parameter limit where that is smaller (999 before SQLite 3.32).
ROWS_PER_STATEMENT = 2000


class SqliteWriter(OnlineWriter):
    def __init__(self, store) -> None:
        from feast.infra.online_stores.helpers import compute_table_id

        super().__init__(store)
        online = self.config.online_store
        path = Path(online.path)
        if not path.is_absolute() and self.config.repo_path:
            path = Path(self.config.repo_path) / path
        table = compute_table_id(
            self.config.project, self.view, self.config.registry.enable_online_feature_view_versioning
        )
        quoted = '"' + table.replace('"', '""') + '"'
        self._delete_from = f"DELETE FROM {quoted} WHERE entity_key IN "
        self._insert = (
            f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, created_ts) VALUES "
        )
        self._upsert = (
            " ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
            "created_ts = NULL WHERE excluded.event_ts >= event_ts"
        )
        # The online table is a cache the stream can rebuild: WAL without a sync per commit is enough.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        if time.daylight:
            # Feast stores naive UTC times read as local time, which runs backwards across a DST change; the
            # newer-row check below then refuses newer rows for up to an hour. Under UTC the two agree.
            log.warning("local time zone %s has daylight saving: run workers with TZ=UTC", time.tzname)
        limit = self._conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
        self._chunk = min(ROWS_PER_STATEMENT, limit // PARAMS_PER_ROW) * PARAMS_PER_ROW

    def _statement(self, n_rows: int) -> str:
        """The upsert of `n_rows` rows (sqlite3 caches the prepared statement by its text)."""
        return self._insert + ", ".join(["(?, ?, ?, ?, ?, NULL)"] * n_rows) + self._upsert

    def _write(self, rows: list[Row]) -> None:
        params = []
        for user_id, event_ts, features in rows:
            # Blobs go in as bytearray: Python's sqlite3 binds that type directly but sends `bytes` through its
            # adapter lookup first: ~1.2 µs a blob, a fifth of this writer's time at batch 500.
            key = bytearray(self.entity_key(user_id))
            # As Feast's sqlite adapter stores it: whole seconds of the naive UTC datetime.
            ts = int(datetime.fromtimestamp(event_ts, UTC).replace(tzinfo=None).timestamp())
            for name, serialize in self.serializers.items():
                value = features[name]
                params += (key, name, bytearray(serialize(value)), str(value), ts)
        with self._conn:
            self._conn.execute("BEGIN")
            for lo in range(0, len(params), self._chunk):
                chunk = params[lo : lo + self._chunk]
                self._conn.execute(self._statement(len(chunk) // PARAMS_PER_ROW), chunk)

    def _delete(self, user_ids: list[str]) -> None:
        keys = [bytearray(self.entity_key(u)) for u in user_ids]
        with self._conn:
            self._conn.execute("BEGIN")
            for lo in range(0, len(keys), self._chunk):
                chunk = keys[lo : lo + self._chunk]
                self._conn.execute(self._delete_from + "(" + ", ".join(["?"] * len(chunk)) + ")", chunk)

    def close(self) -> None:
        self._conn.close()
