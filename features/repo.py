"""Feast definitions: the `user` entity, its push source and the `user_features` feature view.

Imports feast: keep this module out of the pure-math import paths (feast takes seconds to import).
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Float64, Int64, PrimitiveFeastType, String

from features.compute import FEATURE_FIELDS

ENTITY_NAME = "user"
JOIN_KEY = "user_id"
PUSH_SOURCE_NAME = "user_features_push"
FEATURE_VIEW_NAME = "user_features"
TIMESTAMP_FIELD = "event_timestamp"

FEAST_TYPES: dict[type, PrimitiveFeastType] = {int: Int64, float: Float64, str: String}

# No TTL (timedelta(0) means "never expires" to Feast). Feast 0.67's regular online read path does
# not check TTL, but feature services with precompute_online and offline point-in-time joins compare
# the stored event time (2012 in our replays) with the TTL, so any finite TTL would mark every
# replayed feature OUTSIDE_MAX_AGE. Staleness is the stream's job: it expires idle users itself.
FEATURE_TTL = timedelta(0)


def user_entity() -> Entity:
    return Entity(name=ENTITY_NAME, join_keys=[JOIN_KEY], value_type=ValueType.STRING)


def push_source(feast_dir: Path) -> PushSource:
    # Feast requires a batch source behind every push source; we only push ONLINE, so it stays empty.
    batch = FileSource(
        name="user_features_file",
        path=str(feast_dir / "user_features.parquet"),
        timestamp_field=TIMESTAMP_FIELD,
    )
    return PushSource(name=PUSH_SOURCE_NAME, batch_source=batch)


def user_feature_view(feast_dir: Path) -> FeatureView:
    return FeatureView(
        name=FEATURE_VIEW_NAME,
        entities=[user_entity()],
        schema=[Field(name=JOIN_KEY, dtype=String)]
        + [Field(name=name, dtype=FEAST_TYPES[typ]) for name, typ in FEATURE_FIELDS],
        source=push_source(feast_dir),
        ttl=FEATURE_TTL,
        online=True,
    )


def definitions(feast_dir: Path) -> list:
    """Everything `apply_definitions` registers, in dependency order."""
    return [user_entity(), push_source(feast_dir), user_feature_view(feast_dir)]
