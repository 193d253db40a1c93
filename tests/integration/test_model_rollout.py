"""A newer model version rolls out to the running Triton while workers stream: no event is lost,
and every prediction names the version that produced it."""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from deploy.stack.triton import model_versions
from schemas.csv_source import iter_click_events, read_events_frame
from schemas.events import PredictionEvent
from streams.commands import SAMPLE_DATA
from streams.consumer import TopicReader
from streams.producer import ClickProducer, Pacer
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready
from trainer.serving.export import export_model

pytestmark = pytest.mark.integration

RATE = 50.0  # events/s: slow enough to span the new version's load
MAX_STREAM_S = 240.0


def test_new_version_rolls_out_without_losing_events(stack):
    settings = get_settings()
    repository, name = settings.model_repository, settings.triton.model_name
    served = model_versions(repository, name)
    assert served, "no model version to roll out from"
    run_id = uuid.uuid4().hex[:8]
    frame = read_events_frame(SAMPLE_DATA)
    frame["event_id"] = run_id + ":" + frame["event_id"]
    frame["user_id"] = run_id + "-" + frame["user_id"]
    events = list(iter_click_events(frame))

    sent: list[str] = []
    stop = threading.Event()

    def produce() -> None:
        pacer = Pacer(rate=RATE)
        with ClickProducer(settings) as producer:
            for event in events:
                if stop.is_set():
                    break
                pacer.wait(event.timestamp)
                producer.send(event)
                sent.append(event.event_id)

    workers = start_workers(settings, 1)
    try:
        wait_ready(settings, workers)
        with TopicReader(settings, settings.topics.predictions) as predictions:
            predictions.wait_assigned()
            producer = threading.Thread(target=produce, daemon=True)
            producer.start()
            time.sleep(3)
            new_version = export_model(repository / name / str(served[-1]), repository, name)
            versions: dict[str, str] = {}
            copies = 0
            deadline = time.monotonic() + MAX_STREAM_S
            for msg in predictions.messages(idle_timeout=120):
                p = PredictionEvent.model_validate_json(msg.value())
                if not p.event_id.startswith(run_id):
                    continue
                copies += 1
                versions[p.event_id] = p.model_version
                rolled = str(new_version) in versions.values()
                if rolled and not stop.is_set():
                    time.sleep(2)  # a little traffic on the new version, then stop producing
                    stop.set()
                if (stop.is_set() and not producer.is_alive() and set(sent) <= set(versions)) or (
                    time.monotonic() > deadline
                ):
                    break
            stop.set()
            producer.join(timeout=30)
    finally:
        stop_workers(workers)

    assert sent, "nothing was produced"
    assert set(sent) <= set(versions), f"{len(set(sent) - set(versions))} events unanswered"
    assert copies == len(sent)
    in_order = [versions[e] for e in sent]
    assert in_order[0] == str(served[-1])
    assert in_order[-1] == str(new_version)
    # Once the new version answers, the old one does not come back (Triton serves the newest only).
    first_new = in_order.index(str(new_version))
    assert set(in_order[first_new:]) == {str(new_version)}
