"""A batch that fails inside a worker loses no click: the worker stops, and the next one answers them all.

The failure is injected into a real `clickcast worker` process through a `sitecustomize` module on its
PYTHONPATH, which makes the batch holding one marked click raise.
"""

from __future__ import annotations

import os
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deploy.stack.process import tail
from schemas.events import ClickEvent, PredictionEvent
from streams.consumer import TopicReader
from streams.producer import ClickProducer
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready

pytestmark = pytest.mark.integration

INJECTOR = """
import streams.processor as _processor

_prepare = _processor.ClickProcessor.prepare


def _failing(self, batch):
    if any(m.value and {marker!r} in m.value for m in batch):
        raise RuntimeError("injected failure")
    return _prepare(self, batch)


_processor.ClickProcessor.prepare = _failing
"""


def _click(run_id: str, i: int, tag: str = "") -> ClickEvent:
    return ClickEvent(
        event_id=f"{run_id}{tag}-{i}",
        user_id=f"{run_id}-u{i % 4}",
        item_id=f"i{i % 3}",
        event_time=datetime(2012, 5, 1, tzinfo=UTC) + timedelta(minutes=i),
        latitude=40.7,
        longitude=-74.0,
    )


def _wait_exit(worker, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while worker.pid() is not None and time.monotonic() < deadline:
        time.sleep(0.5)
    return worker.pid() is None


def _failures_logged(worker) -> int:
    try:
        return worker.log_file.read_text(errors="replace").count("a batch failed")
    except OSError:
        return 0


def test_a_failed_batch_stops_the_worker_and_its_clicks_are_answered_after_restart(stack, tmp_path):
    settings = get_settings()
    run_id = uuid.uuid4().hex[:8]
    marker = f"{run_id}-fail"
    (tmp_path / "sitecustomize.py").write_text(INJECTOR.format(marker=marker.encode()))
    path = os.pathsep.join(p for p in (str(tmp_path), os.environ.get("PYTHONPATH")) if p)
    events = [_click(run_id, i) for i in range(30)] + [_click(run_id, 30, "-fail")]
    events += [_click(run_id, i) for i in range(31, 60)]

    with TopicReader(settings, settings.topics.predictions) as predictions:
        predictions.wait_assigned()
        failing = start_workers(settings, 1, env={"PYTHONPATH": path})
        failures_before = _failures_logged(failing[0])
        try:
            wait_ready(settings, failing)
            with ClickProducer(settings) as producer:
                for event in events:
                    producer.send(event)
            stopped = _wait_exit(failing[0], 120)
        finally:
            stop_workers(failing)
        assert stopped, f"the worker kept running after its batch failed:\n{tail(failing[0].log_file, 40)}"
        assert _failures_logged(failing[0]) == failures_before + 1

        workers = start_workers(settings, 1)
        try:
            wait_ready(settings, workers)
            answered: set[str] = set()
            deadline = time.monotonic() + 180
            for msg in predictions.messages(idle_timeout=60):
                event_id = PredictionEvent.model_validate_json(msg.value()).event_id
                if event_id.startswith(run_id):
                    answered.add(event_id)
                if len(answered) == len(events) or time.monotonic() > deadline:
                    break
        finally:
            stop_workers(workers)

    missing = {e.event_id for e in events} - answered
    assert not missing, f"{len(missing)} clicks never answered; worker log:\n{tail(workers[0].log_file, 40)}"
