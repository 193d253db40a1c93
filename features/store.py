"""Feast online store for user features: build from settings, apply definitions, write and read.

Writes go through `features.writers` (one micro-batch per call, straight into the store's own layout);
reads through Feast. Run `python -m features.store_benchmark` for figures.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from features.compute import FEATURE_FIELDS
from features.repo import FEATURE_VIEW_NAME, JOIN_KEY, definitions

if TYPE_CHECKING:
    from feast import FeatureStore

    from streams.settings import Settings


def build_store(settings: Settings) -> FeatureStore:
    """A FeatureStore from a programmatic RepoConfig: registry and SQLite file under the run dir."""
    from feast import FeatureStore, RepoConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.repo_config import RegistryConfig

    feast_dir = settings.run_dir / "feast"
    feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.feast.online_store == "redis":
        # Rows of users the stream has forgotten (idle for idle_user_ttl_s) go too: Redis is the production store,
        # and without a TTL it would hold a row for every user ever seen.
        online = RedisOnlineStoreConfig(
            connection_string=settings.redis.connection_string,
            key_ttl_seconds=max(1, math.ceil(settings.stream.idle_user_ttl_s)),  # whole seconds; 0 would mean none
        )
    else:
        online = SqliteOnlineStoreConfig(path=str(feast_dir / "online.db"))
    config = RepoConfig(
        project=settings.feast.project,
        provider="local",
        registry=RegistryConfig(path=str(feast_dir / "registry.db"), cache_ttl_seconds=60),
        online_store=online,
        offline_store={"type": "file"},
        repo_path=feast_dir,
        entity_key_serialization_version=3,
    )
    return FeatureStore(config=config)


def apply_definitions(store: FeatureStore) -> None:
    """Register entity, push source and feature view, and create the online table (idempotent).

    Workers starting together share one registry file, which Feast rewrites in place: apply and re-read it
    under a lock, so no process reads a half-written registry. Later lookups may use the cached copy."""
    import fcntl

    lock_path = Path(store.config.repo_path) / "registry.lock"
    with open(lock_path, "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            store.apply(definitions(store.config.repo_path))
            store.refresh_registry()
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def feature_refs() -> list[str]:
    return [f"{FEATURE_VIEW_NAME}:{name}" for name, _ in FEATURE_FIELDS]


def read_features(store: FeatureStore, user_ids: Sequence[str]) -> list[dict[str, Any]]:
    """Latest features per user, in request order; unknown users come back with None values."""
    if not user_ids:
        return []
    response = store.get_online_features(
        features=feature_refs(), entity_rows=[{JOIN_KEY: uid} for uid in user_ids]
    ).to_dict()
    names = [name for name, _ in FEATURE_FIELDS]
    return [{JOIN_KEY: user_ids[i], **{n: response[n][i] for n in names}} for i in range(len(user_ids))]
