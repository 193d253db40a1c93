"""Operators scale workers out and in through the consumer group while clicks stream: a second worker joins and takes
partitions, then the first leaves and the second takes them all. Every click is answered, and the users' histories
cross both handovers (the features in the online store are those the offline code computes from all their events)."""

from __future__ import annotations

import threading
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from deploy.stack.process import tail
from features.compute import compute_features
from features.history import Visit
from features.store import build_store, read_features
from schemas.csv_source import iter_click_events, read_events_frame
from schemas.events import PredictionEvent
from streams.commands import SAMPLE_DATA
from streams.consumer import TopicReader
from streams.kafka_config import confluent_config, worker_client_id
from streams.producer import ClickProducer, Pacer
from streams.settings import get_settings
from streams.workers import group_members, start_workers, stop_workers, wait_ready
from tests.integration.test_stream import _same

pytestmark = pytest.mark.integration

N_EVENTS = 1500
RATE = 40.0  # events/s: the stream spans both rebalances
MAX_STREAM_S = 300.0


def test_scaling_out_and_in_mid_stream_answers_every_click_and_keeps_every_history(stack):
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    frame = read_events_frame(SAMPLE_DATA, limit=N_EVENTS)
    frame["event_id"] = run_id + ":" + frame["event_id"]
    frame["user_id"] = run_id + "-" + frame["user_id"]
    events = list(iter_click_events(frame))
    sent: list[str] = []

    def produce() -> None:
        pacer = Pacer(rate=RATE)
        with ClickProducer(settings) as producer:
            for event in events:
                pacer.wait(event.timestamp)
                producer.send(event)
                sent.append(event.event_id)

    admin = AdminClient(confluent_config(settings.kafka, log_level=0))
    first = start_workers(settings, 1)
    workers = list(first)
    answered: dict[str, PredictionEvent] = {}
    try:
        wait_ready(settings, first)
        with TopicReader(settings, settings.topics.predictions) as predictions:
            predictions.wait_assigned()
            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            stream = predictions.messages(idle_timeout=120)

            def read_until(done) -> None:
                deadline = time.monotonic() + MAX_STREAM_S
                for msg in stream:
                    p = PredictionEvent.model_validate_json(msg.value())
                    if p.event_id.startswith(run_id):
                        answered[p.event_id] = p
                    if done() or time.monotonic() > deadline:
                        return

            read_until(lambda: len(answered) >= 100)
            workers += start_workers(settings, 1, first=1)  # scale out
            wait_ready(settings, workers)  # both hold partitions
            ids = [worker_client_id(w.pid() or 0) for w in workers]
            shared = dict(group_members(admin, settings.stream.app_id))
            mark = len(answered)
            read_until(lambda: len(answered) >= mark + 300)  # some traffic through both
            stop_workers(first)  # scale in: its partitions move to the second
            read_until(lambda: not producer.is_alive() and set(sent) <= set(answered))
            producer.join(timeout=30)
            alone = dict(group_members(admin, settings.stream.app_id))
    finally:
        stop_workers(workers)

    logs = "\n".join(tail(w.log_file, 30) for w in workers)
    assert len(sent) == N_EVENTS, "the producer did not finish"
    assert set(sent) <= set(answered), f"{len(set(sent) - set(answered))} clicks unanswered\n{logs}"
    assert all(shared.get(i, 0) > 0 for i in ids), shared
    assert set(alone) == {ids[1]} and alone[ids[1]] > 0, alone  # the second holds every partition the group has

    by_user: dict[str, list[Visit]] = {}
    kept = set()
    for e in events:
        if (e.user_id, e.item_id, e.timestamp) not in kept:  # a resent copy (same item and time) counts once
            kept.add((e.user_id, e.item_id, e.timestamp))
            by_user.setdefault(e.user_id, []).append(Visit(e.event_id, e.timestamp, e.item_id, e.latitude, e.longitude))
    users = sorted(by_user)
    for user, row in zip(users, read_features(build_store(settings), users), strict=True):
        visits = sorted(by_user[user], key=lambda v: v.ts)
        assert _same(row, compute_features(visits, visits[-1])), (user, row)
