"""What every online writer shares: newest row per user, complete features, protobuf values."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from features.repo import FEATURE_VIEW_NAME, JOIN_KEY
from features.writers.wire import feature_serializers

if TYPE_CHECKING:
    from feast import FeatureStore

Row = tuple[str, float, dict[str, Any]]  # (user_id, event time in unix seconds, features)
ENTITY_KEY_CACHE = 100_000  # serialized keys of recent users (bounded: a million users must not pin memory)


class OnlineWriter(ABC):
    """Writes micro-batches of (user, event time, features) rows; `write` returns how many users' newest rows it
    handed to the store (a user's several rows in one batch count once; a row older than the one stored is then
    left out by the store, and still counts)."""

    def __init__(self, store: FeatureStore) -> None:
        from feast.infra.key_encoding_utils import serialize_entity_key
        from feast.protos.feast.types.EntityKey_pb2 import EntityKey
        from feast.protos.feast.types.Value_pb2 import Value

        self.store = store
        self.config = store.config
        # The registry copy cached by apply_definitions: the registry file may be rewritten by another worker.
        self.view = store.get_feature_view(FEATURE_VIEW_NAME, allow_registry_cache=True)
        self.serializers = feature_serializers()
        self._required = frozenset(self.serializers)
        version = self.config.entity_key_serialization_version

        keys: dict[str, bytes] = {}

        def entity_key(user_id: str) -> bytes:
            serialized = keys.get(user_id)
            if serialized is None:
                if len(keys) >= ENTITY_KEY_CACHE:
                    keys.clear()
                key = EntityKey(join_keys=[JOIN_KEY], entity_values=[Value(string_val=user_id)])
                serialized = keys[user_id] = serialize_entity_key(key, entity_key_serialization_version=version)
            return serialized

        self.entity_key = entity_key

    def write(self, rows: Sequence[Row]) -> int:
        newest: dict[str, Row] = {}
        for row in rows:
            kept = newest.get(row[0])
            if kept is None or row[1] >= kept[1]:
                newest[row[0]] = row
        required = self._required
        for user_id, _, features in newest.values():
            if not features.keys() >= required:  # a view comparison: no set built per user
                raise ValueError(f"features of user {user_id!r} lack {sorted(required - features.keys())}")
        if newest:
            self._write(list(newest.values()))
        return len(newest)

    @abstractmethod
    def _write(self, rows: list[Row]) -> None:
        """Store one complete, newest row per user."""

    def delete(self, user_ids: Sequence[str]) -> None:
        """Remove these users' rows: the users the stream expired as idle, so the store stays as bounded as the
        stream's table."""
        if user_ids:
            self._delete(list(dict.fromkeys(user_ids)))

    @abstractmethod
    def _delete(self, user_ids: list[str]) -> None:
        """Remove the rows of these distinct users (users without a row are no error)."""

    def close(self) -> None:  # noqa: B027 - writers without own connections have nothing to close
        pass
