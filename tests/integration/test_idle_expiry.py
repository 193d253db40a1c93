"""Users idle past the TTL leave the worker's table and the online store, on the real stack.

The worker runs on topics, a consumer group and a table of its own: expiry reads each partition's event-time
clock, which other tests' events on the shared topics would move.
"""

from __future__ import annotations

import itertools
import shutil
import time
import uuid
from datetime import UTC, datetime

import pytest
from aiokafka.partitioner import murmur2

from deploy.stack.process import tail
from features.store import build_store, read_features
from schemas.events import ClickEvent, PredictionEvent
from streams.consumer import TopicReader
from streams.producer import ClickProducer
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready
from tests.benchmarks.e2e import run_topics
from tests.benchmarks.processes import delete_topics, remove_group, settings_env

pytestmark = pytest.mark.integration

DAY_S = 86400.0
T0 = 1333324800.0  # 2012-04-02


def _partition(user_id: str, partitions: int) -> int:
    """The producer's partition of a key (murmur2, as Java clients and our producer hash it)."""
    return (murmur2(user_id.encode()) & 0x7FFFFFFF) % partitions


def _click(run_id: str, user_id: str, ts: float) -> ClickEvent:
    return ClickEvent(
        event_id=f"{run_id}:{user_id}",
        user_id=user_id,
        item_id="poi-1",
        event_time=datetime.fromtimestamp(ts, UTC),
        latitude=40.7,
        longitude=-74.0,
    )


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_a_user_idle_past_the_ttl_loses_its_online_row(online_store, stack):
    base = get_settings()
    run_id = uuid.uuid4().hex[:8]
    prefix = f"expiry-{run_id}"
    settings = base.model_copy(
        update={
            "feast": base.feast.model_copy(update={"online_store": online_store}),
            "stream": base.stream.model_copy(update={"app_id": prefix}),
        }
    )
    # Two users of one partition: expiry reads each partition's own event-time clock.
    candidates = (f"{run_id}-u{i}" for i in itertools.count())
    idle, active = itertools.islice((u for u in candidates if _partition(u, settings.topics.partitions) == 0), 2)
    settings = run_topics(settings, prefix)  # topics of its own, created
    env = {
        **settings_env(settings),
        "CLICKCAST_STREAM__APP_ID": prefix,
        "CLICKCAST_STREAM__IDLE_USER_TTL_S": str(DAY_S),
        "CLICKCAST_STREAM__EXPIRY_INTERVAL_S": "1",
        "CLICKCAST_STREAM__EXPIRY_SLICE_USERS": "1",  # a pass over the worker's RocksDB store takes several rounds
    }
    workers = []
    try:
        workers = start_workers(settings, 1, env=env)
        store = build_store(settings)
        wait_ready(settings, workers)
        with TopicReader(settings, settings.topics.predictions) as predictions:
            predictions.wait_assigned()
            with ClickProducer(settings) as producer:
                producer.send(_click(run_id, idle, T0))
                producer.send(_click(run_id, active, T0 + 2 * DAY_S))
            answered = set()
            for msg in predictions.messages(idle_timeout=120):
                event_id = PredictionEvent.model_validate_json(msg.value()).event_id
                if event_id.startswith(run_id):
                    answered.add(event_id)
                if len(answered) == 2:
                    break
            assert len(answered) == 2, tail(workers[0].log_file, 40)
            deadline = time.monotonic() + 60
            while read_features(store, [idle])[0]["geohash6"] is not None:
                assert time.monotonic() < deadline, f"the idle user's row stayed:\n{tail(workers[0].log_file, 40)}"
                time.sleep(0.5)
        assert read_features(store, [active])[0]["geohash6"] is not None
    finally:
        stop_workers(workers)
        remove_group(settings, prefix)
        delete_topics(settings, prefix)  # ours, faust's changelog and assignor topics
        shutil.rmtree(settings.run_dir / "workers" / "worker-0-data" / prefix, ignore_errors=True)
