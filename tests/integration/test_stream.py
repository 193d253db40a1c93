"""The whole path on the real stack: Kafka -> faust worker -> Feast + Triton -> Kafka.

Users and event ids get a per-run prefix, so the test is independent of what earlier runs left in
the topics, the worker's table and the online store.
"""

from __future__ import annotations

import time
import uuid

import pytest

from deploy.stack.process import tail
from features.compute import compute_features
from schemas.events import DeadLetter, PredictionEvent
from streams.consumer import TopicReader
from streams.producer import ClickProducer
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, uncommitted, wait_ready
from tests.integration.conftest import (
    assert_online_features,
    histories_kept,
    late_answers,
    logged,
    run_events,
    same_features,
)

pytestmark = pytest.mark.integration

N_EVENTS = 2000
CLOSED = "closed the feature store and the triton channel"  # a clean stop's last word
# Each names the user "u", which becomes the run's id: only this run's letters count, as an earlier run's clicks may
# be read again (at least once) while this run's reader listens.
MALFORMED = [
    b'{broken json "u"',
    b'{"event_id": "x", "user_id": "u", "item_id": "i", "latitude": 40.7, "longitude": -74.0}',
    b'{"event_id": "y", "user_id": "u", "item_id": "i", "event_time": "2012-05-01T10:00:00Z",'
    b' "latitude": 40.7, "longitude": 200}',
]


@pytest.mark.parametrize("online_store", ["sqlite", "redis"])
def test_every_click_gets_one_prediction_and_features_match_offline(online_store, stack):
    settings = get_settings()
    settings = settings.model_copy(update={"feast": settings.feast.model_copy(update={"online_store": online_store})})
    run_id = uuid.uuid4().hex[:8]
    events = run_events(run_id, limit=N_EVENTS)
    workers = start_workers(settings, 1, env={"CLICKCAST_FEAST__ONLINE_STORE": online_store})
    closed_before = logged(workers[0], CLOSED)  # the log file carries earlier runs
    try:
        wait_ready(settings, workers)
        with (
            TopicReader(settings, settings.topics.predictions) as predictions,
            TopicReader(settings, settings.topics.dead_letters) as dead_letters,
        ):
            predictions.wait_assigned()
            dead_letters.wait_assigned()
            with ClickProducer(settings) as producer:
                for raw in MALFORMED:
                    producer.send_raw(run_id.encode(), raw.replace(b'"u"', f'"{run_id}"'.encode()))
                for event in events:
                    producer.send(event)
            received: dict[str, PredictionEvent] = {}
            copies = 0
            deadline = time.monotonic() + 300
            for msg in predictions.messages(idle_timeout=120):
                p = PredictionEvent.model_validate_json(msg.value())
                if p.event_id.startswith(run_id):
                    copies += 1
                    received[p.event_id] = p
                if len(received) == N_EVENTS or time.monotonic() > deadline:
                    break
            copies += late_answers(predictions, run_id)
            letters = []
            for msg in dead_letters.messages(idle_timeout=5):
                if run_id.encode() in msg.value():
                    letters.append(DeadLetter.model_validate_json(msg.value()))
    finally:
        stop_workers(workers)

    missing = {e.event_id for e in events} - set(received)
    assert not missing, f"{len(missing)} events unanswered; worker log:\n{tail(workers[0].log_file, 40)}"
    # A clean stop flushes the answers, then closes the dependencies without an error.
    assert logged(workers[0], CLOSED) == closed_before + 1, tail(workers[0].log_file, 40)
    # ... and commits every click it answered (those an earlier run left too): the next worker reads none again.
    lag = uncommitted(settings, settings.stream.app_id, settings.topics.clicks)
    assert lag and not any(lag.values()), lag
    assert copies == N_EVENTS  # exactly one answer each on a healthy run
    assert all(p.items and p.model_version and p.latency.total_ms > 0 for p in received.values())
    assert len({(d.source_partition, d.source_offset) for d in letters}) == len(letters) == len(MALFORMED)
    assert any("longitude" in d.error for d in letters)
    assert any("event_time" in d.error for d in letters)

    by_user = histories_kept(events)
    assert_online_features(settings, by_user)
    # The prediction event carries the same values the online store got.
    last_event = {user: visits[-1].event_id for user, visits in by_user.items()}
    for user, event_id in last_event.items():
        assert same_features(received[event_id].features, compute_features(by_user[user], by_user[user][-1]))
