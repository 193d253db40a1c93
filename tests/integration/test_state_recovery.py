"""A worker that restarts keeps its users' histories: from its local table store when it still has it, from a stale
store plus the changelog records after the store's persisted offsets, and from the table's changelog topic (which
the worker writes on its own producer) alone when the store is gone, as on a new machine.

The worker runs on topics, a consumer group and a table of its own, so the changelog holds only this test's users.
"""

from __future__ import annotations

import collections
import shutil
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiokafka.partitioner import murmur2

from deploy.stack.process import tail
from schemas.events import ClickEvent, PredictionEvent
from streams.consumer import TopicReader
from streams.producer import ClickProducer
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready
from tests.benchmarks.e2e import run_topics
from tests.benchmarks.processes import delete_topics, remove_group, settings_env

pytestmark = pytest.mark.integration

T0 = 1333324800.0  # 2012-04-02
USERS = 3


def _click(run_id: str, user: int, i: int) -> ClickEvent:
    """The i-th click of a user, a minute after the one before: all of a user's clicks fall in 10 minutes."""
    return ClickEvent(
        event_id=f"{run_id}-u{user}-{i}",
        user_id=f"{run_id}-u{user}",
        item_id=f"poi-{i % 3}",
        event_time=datetime.fromtimestamp(T0 + 60.0 * i, UTC),
        latitude=40.7 + user / 100,
        longitude=-74.0,
    )


def _answers(predictions: TopicReader, run_id: str, clicks: list[ClickEvent], worker) -> dict[str, dict]:
    """Each click's prediction features, by event id."""
    wanted, got = {c.event_id for c in clicks}, {}
    for msg in predictions.messages(idle_timeout=120):
        event = PredictionEvent.model_validate_json(msg.value())
        if event.event_id in wanted:
            got[event.event_id] = event.features
        if len(got) == len(wanted):
            return got
    raise AssertionError(f"answered {len(got)} of {len(wanted)} clicks:\n{tail(worker.log_file, 40)}")


def _persisted_offsets(store: Path) -> dict[int, int]:
    """The changelog offset each partition's RocksDB records as persisted (what faust seeks past on recovery)."""
    import rocksdict

    offsets = {}
    for db_path in sorted(store.glob("v*/tables/user-history-*.db")):
        db = rocksdict.Rdict(str(db_path), access_type=rocksdict.AccessType.read_only())
        try:
            offset = db.get(b"__faust\0offset__")
        finally:
            db.close()
        if offset is not None:
            offsets[int(db_path.name.removesuffix(".db").rpartition("-")[2])] = int(offset)
    return offsets


def _partition(user_id: str, partitions: int) -> int:
    """The producer's partition of a key (murmur2, as Java clients and our producer hash it)."""
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


def test_histories_survive_a_restart_with_and_without_the_local_store():
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"recovery-{run_id}"
    settings = run_topics(base.model_copy(update={"stream": base.stream.model_copy(update={"app_id": prefix})}), prefix)
    env = {**settings_env(settings), "CLICKCAST_STREAM__APP_ID": prefix}
    store_dir = settings.run_dir / "workers" / "worker-0-data" / prefix
    workers = []

    def run_clicks(clicks: list[ClickEvent]) -> dict[str, dict]:
        nonlocal workers
        workers = start_workers(settings, 1, env=env)
        wait_ready(settings, workers)
        with TopicReader(settings, settings.topics.predictions) as predictions:
            predictions.wait_assigned()
            with ClickProducer(settings) as producer:
                for click in clicks:
                    producer.send(click)
            answers = _answers(predictions, run_id, clicks, workers[0])
        stop_workers(workers)
        return answers

    def counts(answers: dict[str, dict], i: int) -> list[int]:
        return [answers[f"{run_id}-u{u}-{i}"]["count_10m"] for u in range(USERS)]

    snapshot = settings.run_dir / "workers" / f"{prefix}-snapshot"
    try:
        assert counts(run_clicks([_click(run_id, u, i) for i in range(5) for u in range(USERS)]), 4) == [5] * USERS
        shutil.copytree(store_dir, snapshot)
        # Each partition that got users records the offset of its last changelog record: one record a user a batch,
        # so at most 5 a user (fewer when a user's clicks shared a batch).
        users = collections.Counter(_partition(f"{run_id}-u{u}", settings.topics.partitions) for u in range(USERS))
        persisted = _persisted_offsets(snapshot)
        assert set(persisted) == set(users), persisted
        assert all(0 <= persisted[p] < 5 * n for p, n in users.items()), (persisted, users)

        assert counts(run_clicks([_click(run_id, u, 5) for u in range(USERS)]), 5) == [6] * USERS  # the local store

        # The store as it was before: only the changelog records after its persisted offsets hold click 5.
        shutil.rmtree(store_dir)
        shutil.copytree(snapshot, store_dir)
        assert counts(run_clicks([_click(run_id, u, 6) for u in range(USERS)]), 6) == [7] * USERS

        shutil.rmtree(store_dir)  # a new machine: only the changelog knows the users
        recovered = run_clicks([_click(run_id, u, 7) for u in range(USERS)])
        assert counts(recovered, 7) == [8] * USERS
        assert all(recovered[f"{run_id}-u{u}-7"]["seconds_since_prev"] == 60.0 for u in range(USERS))
    finally:
        stop_workers(workers)
        remove_group(settings, prefix)
        delete_topics(settings, prefix)  # ours and faust's changelog and assignor topics
        shutil.rmtree(store_dir, ignore_errors=True)
        shutil.rmtree(snapshot, ignore_errors=True)
