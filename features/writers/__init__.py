"""Micro-batch writers of user feature rows into a Feast online store, one per backend.

`open_writer(store)` picks the fastest writer for the store's configured backend; every writer
collapses a batch to each user's newest row, and keeps a stored row unless the new one is at least
as new (so retried or reordered batches never move a user's features back in time). Read through
Feast as usual (`features.store.read_features`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from features.writers.base import OnlineWriter, Row
from features.writers.feast_api import FeastApiWriter

if TYPE_CHECKING:
    from feast import FeatureStore

__all__ = ["FeastApiWriter", "OnlineWriter", "Row", "open_writer"]


def open_writer(store: FeatureStore) -> OnlineWriter:
    """The store's direct writer (SQLite, Redis), or Feast's own online_write_batch for other backends."""
    online = store.config.online_store
    kind = online.type
    if kind == "sqlite":
        from features.writers.sqlite import SqliteWriter

        return SqliteWriter(store)
    if kind == "redis":
        from feast.infra.online_stores.redis import RedisType

        from features.writers.redis import RedisWriter

        if online.redis_type != RedisType.redis:  # cluster and sentinel: Feast's own client handles them
            return FeastApiWriter(store)

        return RedisWriter(store)
    return FeastApiWriter(store)
