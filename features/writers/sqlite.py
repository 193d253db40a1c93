"""Feast's SQLite online table, written with one `executemany` upsert per micro-batch.

Feast's own `online_write_batch` runs one statement per (user, feature) from Python; this writes the
same rows (entity key, feature name, serialized Value, value_text, event_ts) in one statement and one
transaction, and skips rows older than what is stored.
"""

from __future__ import annotations

import sqlite3
from datetime import UTC, datetime
from pathlib import Path

from features.writers.base import OnlineWriter, Row


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
        self._sql = (
            f"INSERT INTO {quoted} (entity_key, feature_name, value, value_text, event_ts, created_ts) "
            "VALUES (?, ?, ?, ?, ?, NULL) ON CONFLICT(entity_key, feature_name) DO UPDATE SET "
            "value = excluded.value, value_text = excluded.value_text, event_ts = excluded.event_ts, "
            "created_ts = NULL WHERE excluded.event_ts >= event_ts"
        )
        # The online table is a cache the stream can rebuild: WAL without a sync per commit is enough.
        self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")

    def _write(self, rows: list[Row]) -> None:
        params = []
        for user_id, event_ts, features in rows:
            key = self.entity_key(user_id)
            # As Feast's sqlite adapter stores it: whole seconds of the naive UTC datetime.
            ts = int(datetime.fromtimestamp(event_ts, UTC).replace(tzinfo=None).timestamp())
            for name, serialize in self.serializers.items():
                value = features[name]
                params.append((key, name, serialize(value), str(value), ts))
        with self._conn:
            self._conn.execute("BEGIN")
            self._conn.executemany(self._sql, params)

    def close(self) -> None:
        self._conn.close()
