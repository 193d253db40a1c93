"""Feast online store for user features: build from settings, apply definitions, write and read.

The write path skips Feast's pandas -> arrow -> protobuf conversion: `OnlineFeatureWriter` builds the
protobuf values directly and hands one micro-batch to the provider's `online_write_batch` (what
`push`/`write_to_online_store` call at the end). Run `python -m features.store_benchmark` for figures.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from features.compute import FEATURE_FIELDS
from features.repo import FEATURE_VIEW_NAME, JOIN_KEY, definitions

if TYPE_CHECKING:
    from feast import FeatureStore
    from feast.protos.feast.types.Value_pb2 import Value

    from streams.settings import Settings

Row = tuple[str, float, dict[str, Any]]  # (user_id, event time in unix seconds, features)


def build_store(settings: Settings) -> FeatureStore:
    """A FeatureStore from a programmatic RepoConfig: registry and SQLite file under the run dir."""
    from feast import FeatureStore, RepoConfig
    from feast.infra.online_stores.redis import RedisOnlineStoreConfig
    from feast.infra.online_stores.sqlite import SqliteOnlineStoreConfig
    from feast.repo_config import RegistryConfig

    feast_dir = settings.run_dir / "feast"
    feast_dir.mkdir(parents=True, exist_ok=True)
    if settings.feast.online_store == "redis":
        online = RedisOnlineStoreConfig(connection_string=settings.redis.connection_string)
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
    """Register entity, push source and feature view, and create the online table (idempotent)."""
    store.apply(definitions(store.config.repo_path))


def _value_builders() -> dict[str, Callable[[Any], Value]]:
    from feast.protos.feast.types.Value_pb2 import Value

    by_type: dict[type, Callable[[Any], Value]] = {
        int: lambda x: Value(int64_val=int(x)),
        float: lambda x: Value(double_val=float(x)),
        str: lambda x: Value(string_val=str(x)),
    }
    return {name: by_type[typ] for name, typ in FEATURE_FIELDS}


class OnlineFeatureWriter:
    """Writes micro-batches of user features to the online store in one call each.

    Rows for the same user within a batch collapse to the newest by event time. Across batches the
    Redis store ignores rows older than what it holds, but SQLite overwrites: callers should not
    write features of late events after newer ones (the stream writes only when the event is the
    user's newest).
    """

    def __init__(self, store: FeatureStore) -> None:
        self._store = store
        self._view = store.get_feature_view(FEATURE_VIEW_NAME)
        # Private in Feast 0.67, but it is the exact call push() ends in, minus the dataframe work.
        self._provider = store._get_provider()
        self._builders = _value_builders()

    def write(self, rows: Sequence[Row]) -> int:
        """Write a micro-batch; returns how many user rows were written."""
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        newest: dict[str, Row] = {}
        for row in rows:
            kept = newest.get(row[0])
            if kept is None or row[1] >= kept[1]:
                newest[row[0]] = row
        builders = self._builders
        data = []
        for user_id, event_ts, features in newest.values():
            missing = builders.keys() - features.keys()
            if missing:
                raise ValueError(f"features of user {user_id!r} lack {sorted(missing)}")
            key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=user_id)])
            values = {name: build(features[name]) for name, build in builders.items()}
            data.append((key, values, datetime.fromtimestamp(event_ts, UTC), None))
        if data:
            self._provider.online_write_batch(self._store.config, self._view, data, progress=None)
        return len(data)


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
