"""The processes under test: clickcast workers in a fresh consumer group, and the comparison relays.

Everything a run creates on the broker (consumer groups, faust's changelog and assignor topics) and
on disk (table stores) is named after the run and removed afterwards. Pid files and logs live under
`<run dir>/bench/`, apart from the demo's and the tests' workers, so neither stops the other's.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from pathlib import Path

from confluent_kafka import Consumer, TopicPartition

from deploy.stack.kafka_admin import admin_client
from deploy.stack.process import ManagedProcess, first_match
from streams.consumer import watermarks
from streams.kafka_config import confluent_config
from streams.settings import PROJECT_ROOT, Settings
from streams.workers import start_workers, stop_workers, wait_ready
from tests.benchmarks.relay import READY_LINE


def bench_dir(settings: Settings) -> Path:
    return settings.run_dir / "bench"


def wait_for_leaders(settings: Settings, topics: list[str], timeout_s: float = 30.0) -> None:
    """Until every partition of freshly created topics has a leader (reads fail before that)."""
    admin = admin_client(settings.kafka.bootstrap)
    deadline = time.monotonic() + timeout_s
    while True:
        metadata = admin.list_topics(timeout=10.0).topics
        ready = [
            t in metadata
            and metadata[t].error is None
            and metadata[t].partitions
            and all(p.leader >= 0 for p in metadata[t].partitions.values())
            for t in topics
        ]
        if all(ready):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"topics without leaders after {timeout_s:.0f}s: {topics}")
        time.sleep(0.2)


def start_group_at_end(settings: Settings, group: str, topic: str) -> None:
    """Commit the topic's end offsets for a new group, so its members skip what is already there."""
    consumer = Consumer(confluent_config(settings.kafka, **{"group.id": group, "enable.auto.commit": False}))
    try:
        partitions = consumer.list_topics(topic, timeout=10.0).topics[topic].partitions
        offsets = []
        for p in partitions:
            high = watermarks(consumer, TopicPartition(topic, p))[1]
            offsets.append(TopicPartition(topic, p, high))
        consumer.commit(offsets=offsets, asynchronous=False)
    finally:
        consumer.close()


def settings_env(settings: Settings) -> dict[str, str]:
    """What a process started by the bench must share with it: topics, online store, model."""
    return {
        "CLICKCAST_TOPICS__CLICKS": settings.topics.clicks,
        "CLICKCAST_TOPICS__PREDICTIONS": settings.topics.predictions,
        "CLICKCAST_TOPICS__DEAD_LETTERS": settings.topics.dead_letters,
        "CLICKCAST_TOPICS__PARTITIONS": str(settings.topics.partitions),
        "CLICKCAST_FEAST__ONLINE_STORE": settings.feast.online_store,
        "CLICKCAST_TRITON__MODEL_NAME": settings.triton.model_name,
    }


# Cleanup is best effort: a failure to delete must not mask the benchmark's result.


def delete_topics(settings: Settings, prefix: str) -> None:
    admin = admin_client(settings.kafka.bootstrap)
    topics = [t for t in admin.list_topics(timeout=10.0).topics if t.startswith(prefix)]
    if topics:
        for future in admin.delete_topics(topics, operation_timeout=10.0).values():
            with contextlib.suppress(Exception):
                future.result(timeout=15.0)


def remove_group(settings: Settings, group: str) -> None:
    admin = admin_client(settings.kafka.bootstrap)
    with contextlib.suppress(Exception):
        admin.delete_consumer_groups([group], request_timeout=10.0)[group].result(timeout=15.0)


class WorkerGroup:
    """`count` clickcast workers sharing a consumer group named for this run."""

    def __init__(self, settings: Settings, count: int, app_id: str) -> None:
        self.count = count
        self.app_id = app_id
        # The workers read their settings from the environment; the copy only redirects the pid files,
        # logs and table stores that start_workers keeps under run_dir, and names the group to describe.
        self.settings = settings.model_copy(
            update={
                "run_dir": bench_dir(settings),
                "stream": settings.stream.model_copy(update={"app_id": app_id}),
            }
        )
        self.env = {**settings_env(settings), "CLICKCAST_STREAM__APP_ID": app_id}
        self._workers: list[ManagedProcess] = []

    def start(self, timeout_s: float = 180.0) -> float:
        """Start the workers and wait until every one holds partitions; returns the seconds it took."""
        began = time.monotonic()
        start_group_at_end(self.settings, self.app_id, self.settings.topics.clicks)
        self._workers = start_workers(self.settings, self.count, env=self.env)
        wait_ready(self.settings, self._workers, timeout_s=timeout_s)
        return time.monotonic() - began

    def partitions_per_member(self) -> list[int]:
        """Clicks partitions held by each worker (faust members also hold changelog partitions)."""
        admin = admin_client(self.settings.kafka.bootstrap)
        group = admin.describe_consumer_groups([self.app_id])[self.app_id].result(timeout=15.0)
        clicks = self.settings.topics.clicks
        counts = [sum(tp.topic == clicks for tp in m.assignment.topic_partitions) for m in group.members]
        return sorted(counts, reverse=True)

    @property
    def log_files(self) -> list[Path]:
        return [w.log_file for w in self._workers]

    def pids(self) -> list[int]:
        return [pid for w in self._workers if (pid := w.pid()) is not None]

    def stop(self) -> None:
        stop_workers(self._workers)
        remove_group(self.settings, self.app_id)
        delete_topics(self.settings, f"{self.app_id}-")  # faust's changelog and assignor topics
        for i in range(self.count):
            shutil.rmtree(self.settings.run_dir / "workers" / f"worker-{i}-data" / self.app_id, ignore_errors=True)

    def __enter__(self) -> WorkerGroup:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Relay:
    """A `tests.benchmarks.relay` process (naive pipeline or Kafka pass-through)."""

    def __init__(self, settings: Settings, mode: str, group: str, output: str) -> None:
        self.settings = settings
        self.group = group
        self.process = ManagedProcess(f"relay-{mode}", bench_dir(settings))
        self.argv = [sys.executable, "-m", "tests.benchmarks.relay", mode, "--group", group, "--output", output]

    def start(self, timeout_s: float = 120.0) -> float:
        began = time.monotonic()
        self.process.stop(grace_s=5.0)  # one left over by an interrupted run
        self.process.start(self.argv, env={**os.environ, **settings_env(self.settings)}, cwd=PROJECT_ROOT)
        self.process.wait_healthy(
            lambda: first_match(self.process.log_file, f"^{READY_LINE}$") is not None,
            timeout_s=timeout_s,
            cause_pattern=r"Error|Exception",
        )
        return time.monotonic() - began

    def pid(self) -> int | None:
        return self.process.pid()

    def stop(self) -> None:
        self.process.stop(grace_s=15.0)
        remove_group(self.settings, self.group)

    def __enter__(self) -> Relay:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
