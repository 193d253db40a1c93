"""Create the stream topics with their configured partition counts (idempotent)."""

from __future__ import annotations

from deploy.stack.kafka_admin import admin_client
from streams.settings import Settings


def ensure_topics(settings: Settings, timeout_s: float = 30.0) -> list[str]:
    """Create missing topics and grow ones with too few partitions; returns what changed."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import NewPartitions, NewTopic

    topics = settings.topics
    names = [topics.clicks, topics.predictions, topics.dead_letters]
    admin = admin_client(settings.kafka.bootstrap)
    existing = admin.list_topics(timeout=timeout_s).topics
    changes: list[str] = []

    to_create = [NewTopic(n, topics.partitions, topics.replication_factor) for n in names if n not in existing]
    if to_create:
        for name, future in admin.create_topics(to_create, request_timeout=timeout_s).items():
            try:
                future.result()
                changes.append(f"created {name} ({topics.partitions} partitions)")
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:  # else: lost a race with another `up`
                    raise RuntimeError(f"cannot create topic {name}: {exc.args[0].str()}") from None

    to_grow = [
        NewPartitions(n, topics.partitions)
        for n in names
        if n in existing and len(existing[n].partitions) < topics.partitions
    ]
    if to_grow:
        for name, future in admin.create_partitions(to_grow, request_timeout=timeout_s).items():
            try:
                future.result()
            except KafkaException as exc:
                raise RuntimeError(f"cannot grow topic {name}: {exc.args[0].str()}") from None
            changes.append(f"grew {name} to {topics.partitions} partitions")
    return changes
