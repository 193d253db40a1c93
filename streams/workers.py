"""Starting, watching and stopping `clickcast worker` processes (demo, tests, benchmarks)."""

from __future__ import annotations

import os
import shutil
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient

from deploy.stack.process import ManagedProcess, ServiceError
from streams.consumer import watermarks
from streams.kafka_config import confluent_config, worker_client_id
from streams.settings import Settings


def _clickcast() -> str:
    return shutil.which("clickcast", path=str(Path(sys.executable).parent)) or "clickcast"


def start_workers(
    settings: Settings, count: int, *args: str, env: dict[str, str] | None = None, first: int = 0
) -> list[ManagedProcess]:
    """`count` workers, named worker-<first>, worker-<first + 1>, ... From the first (`first` 0), the workers an
    interrupted run left are stopped first; a later `first` adds workers beside the running ones (scaling out)."""
    directory = settings.run_dir / "workers"
    if first == 0:
        stop_leftover_workers(directory)
    workers = []
    for i in range(first, first + count):
        proc = ManagedProcess(f"worker-{i}", directory)
        # Each worker needs its own table store directory (RocksDB locks it); the online store is shared.
        data_dir = str(directory / f"worker-{i}-data")
        worker_env = {**os.environ, **(env or {}), "CLICKCAST_STREAM__DATA_DIR": data_dir}
        proc.start([_clickcast(), "worker", *args], env=worker_env)
        workers.append(proc)
    return workers


def stop_leftover_workers(directory: Path) -> None:
    """Stop the workers an interrupted run left in `directory`, however many it started: they would steal
    partitions from the ones started next."""
    for pid_file in sorted(directory.glob("worker-*.pid")):
        ManagedProcess(pid_file.stem, directory).stop(grace_s=5.0)


def group_members(admin: AdminClient, group_id: str) -> list[tuple[str, int]]:
    """(client id, number of assigned partitions) of a consumer group's members; empty unless Stable."""
    group = admin.describe_consumer_groups([group_id])[group_id].result(timeout=10)
    if group.state.name != "STABLE":
        return []
    return [(m.client_id, len(m.assignment.topic_partitions)) for m in group.members]


def uncommitted(settings: Settings, group_id: str, topic: str) -> dict[int, int]:
    """Per partition of `topic`, the messages past the group's committed offset (all of them when it has none): what
    the group's next member would read again, or has still to read."""
    reader = Consumer(confluent_config(settings.kafka, log_level=0, **{"group.id": group_id}))
    try:
        partitions = [TopicPartition(topic, p) for p in reader.list_topics(topic, timeout=10).topics[topic].partitions]
        lag = {}
        for tp in reader.committed(partitions, timeout=10):
            if tp.error is not None:
                raise KafkaException(tp.error)
            low, high = watermarks(reader, tp)
            lag[tp.partition] = high - max(tp.offset, low)  # none committed, or retention deleted past it: from low
        return lag
    finally:
        reader.close()


def wait_ready(settings: Settings, workers: list[ManagedProcess], timeout_s: float = 120.0) -> None:
    """Until every worker is a member of the stable group with partitions assigned. Members are told apart by
    client id: a member of an earlier run's that was killed stays in the group until its session times out."""
    deadline = time.monotonic() + timeout_s
    # One client for the whole wait, and quiet: it polls a group that does not exist until the first worker joins,
    # and librdkafka logs a notice as a client closes (twice a second with a client per poll).
    admin = AdminClient(confluent_config(settings.kafka, log_level=0))
    while time.monotonic() < deadline:
        dead = [w.name for w in workers if w.pid() is None]
        if dead:
            raise ServiceError(f"{', '.join(dead)} exited; see {workers[0].directory}/<name>.log")
        try:
            members = group_members(admin, settings.stream.app_id)
        except Exception:  # the group does not exist until the first worker joins
            members = []
        assigned = {client_id for client_id, n in members if n > 0}
        if {worker_client_id(w.pid() or 0) for w in workers} <= assigned:
            return
        time.sleep(0.5)
    raise ServiceError(f"workers not ready after {timeout_s:.0f}s; see logs in {workers[0].directory}")


def stop_workers(workers: list[ManagedProcess]) -> None:
    for worker in workers:
        worker.stop(grace_s=15.0)
