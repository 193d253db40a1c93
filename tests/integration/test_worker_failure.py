"""A batch that fails inside a worker loses no click: the worker stops, and the next one answers them all.

The failure is injected into a real `clickcast worker` process through a `sitecustomize` module on its
PYTHONPATH, which makes the batch holding one marked click raise.
"""

from __future__ import annotations

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
from tests.integration.conftest import injected_env, logged

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


# From the batch holding the marked click on, every prediction fails, as while Triton is down.
OUTAGE = """
import streams.predictor as _predictor
import streams.processor as _processor

_prepare = _processor.ClickProcessor.prepare
_down = []


def _marking(self, batch):
    if any(m.value and {marker!r} in m.value for m in batch):
        _down.append(True)
    return _prepare(self, batch)


async def _predict(self, histories):
    if _down:
        raise ConnectionError({outage!r})
    return await _predict_up(self, histories)


_predict_up = _predictor.TritonPredictor.predict
_processor.ClickProcessor.prepare = _marking
_predictor.TritonPredictor.predict = _predict
"""

# Triton never answers the worker, which holds its first click until it does.
OUTAGE_FROM_START = """
import logging

import streams.app as _app
import streams.predictor as _predictor


async def _start(self):
    raise ConnectionError({outage!r})


async def _ready(predictor, stopping):
    logging.getLogger("injected").warning("a click waits for %s", {outage!r})
    await _ready_up(predictor, stopping)


_ready_up = _app._ready
_app._ready = _ready
_predictor.TritonPredictor.start = _start
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


def _unanswered(predictions: TopicReader, events: list[ClickEvent], timeout_s: float = 180) -> set[str]:
    """The ids of `events` still unanswered once all are, or after `timeout_s` (answers read so far count too)."""
    wanted = {e.event_id for e in events}
    deadline = time.monotonic() + timeout_s
    for msg in predictions.messages(idle_timeout=60):
        wanted.discard(PredictionEvent.model_validate_json(msg.value()).event_id)
        if not wanted or time.monotonic() > deadline:
            break
    return wanted


def _answered_by_a_new_worker(settings, predictions: TopicReader, events: list[ClickEvent]) -> None:
    """A plain worker started now answers every one of `events` (some may have been answered before)."""
    workers = start_workers(settings, 1)
    try:
        wait_ready(settings, workers)
        missing = _unanswered(predictions, events)
    finally:
        stop_workers(workers)
    assert not missing, f"{len(missing)} clicks never answered; worker log:\n{tail(workers[0].log_file, 40)}"


def _stream_to(settings, worker, events: list[ClickEvent], until_logged: str | None = None) -> None:
    """Once `worker` holds partitions, send `events`; then wait (up to 60 s) until its log shows `until_logged`."""
    wait_ready(settings, [worker])
    with ClickProducer(settings) as producer:
        for event in events:
            producer.send(event)
    deadline = time.monotonic() + 60
    while until_logged is not None and not logged(worker, until_logged):
        assert time.monotonic() < deadline, f"the outage never held a click:\n{tail(worker.log_file, 40)}"
        time.sleep(0.5)


def _injected_run(tmp_path, script: str, tag: str, n: int) -> tuple[str, list[ClickEvent], dict[str, str]]:
    """(marker, clicks, worker env): `n` clicks of a new run, the middle one marked with `tag`, and the env that
    injects `script` (formatted with the marker) into a worker."""
    run_id = uuid.uuid4().hex[:8]
    marker = f"{run_id}{tag}"
    env = injected_env(tmp_path, script.format(marker=marker.encode(), outage=f"outage {marker}"))
    middle = n // 2
    events = [_click(run_id, i) for i in range(middle)] + [_click(run_id, middle, tag)]
    events += [_click(run_id, i) for i in range(middle + 1, n)]
    return marker, events, env


def _outage_run(tmp_path, script: str) -> tuple[str, list[ClickEvent], dict[str, str]]:
    """`_injected_run` of an outage from the marked click's batch on, in a worker whose hung stop the watchdog ends
    after 5 s."""
    marker, events, env = _injected_run(tmp_path, script, "-down", 40)
    return marker, events, env | {"CLICKCAST_STREAM__FAILED_STOP_GRACE_S": "5"}


def test_a_failed_batch_stops_the_worker_and_its_clicks_are_answered_after_restart(stack, tmp_path):
    settings = get_settings()
    _, events, env = _injected_run(tmp_path, INJECTOR, "-fail", 60)

    with TopicReader(settings, settings.topics.predictions) as predictions:
        predictions.wait_assigned()
        failing = start_workers(settings, 1, env=env)
        failures_before = logged(failing[0], "a batch failed")
        try:
            _stream_to(settings, failing[0], events)
            stopped = _wait_exit(failing[0], 120)
        finally:
            stop_workers(failing)
        assert stopped, f"the worker kept running after its batch failed:\n{tail(failing[0].log_file, 40)}"
        assert logged(failing[0], "a batch failed") == failures_before + 1

        _answered_by_a_new_worker(settings, predictions, events)


@pytest.mark.parametrize(
    ("script", "waiting", "giving_up"),
    [
        (OUTAGE, "failed (ConnectionError: outage {marker})", "still failing as the worker stops"),
        (OUTAGE_FROM_START, "a click waits for outage {marker}", "the worker stops before Triton answered"),
    ],
    ids=["mid-stream", "from-the-start"],
)
def test_a_worker_asked_to_stop_during_an_outage_stops_and_its_clicks_are_answered_after_restart(
    stack, tmp_path, script, waiting, giving_up
):
    settings = get_settings()
    marker, events, env = _outage_run(tmp_path, script)

    with TopicReader(settings, settings.topics.predictions) as predictions:
        predictions.wait_assigned()
        down = start_workers(settings, 1, env=env)
        gave_up, hung = logged(down[0], giving_up), logged(down[0], "no clean stop")
        try:
            _stream_to(settings, down[0], events, until_logged=waiting.format(marker=marker))
            started = time.monotonic()
            # Before, the stop waited out the outage, and only this SIGKILL ended it.
            down[0].stop(grace_s=60.0)
            stop_s = time.monotonic() - started
        finally:
            stop_workers(down)
        log = tail(down[0].log_file, 40)
        assert stop_s < 30, f"the worker took {stop_s:.0f} s to stop during the outage:\n{log}"
        assert logged(down[0], giving_up) > gave_up, log
        assert logged(down[0], "no clean stop") == hung, f"the stop hung until the watchdog:\n{log}"

        _answered_by_a_new_worker(settings, predictions, events)


def test_a_worker_whose_outage_holds_a_rebalance_gives_up_and_the_group_answers_its_clicks(stack, tmp_path):
    """Triton fails for the first worker alone when a second joins: the rebalance waits for the first worker's clicks,
    whose retries give up 20 s into it (before the group's 60 s rebalance timeout would remove a member still running),
    so the first worker stops and the second answers every click."""
    settings = get_settings()
    marker, events, env = _outage_run(tmp_path, OUTAGE)

    with TopicReader(settings, settings.topics.predictions) as predictions:
        predictions.wait_assigned()
        down = start_workers(settings, 1, env=env)
        workers = list(down)
        gave_up = logged(down[0], "still failing as the worker stops or gives its partitions up")
        try:
            _stream_to(settings, down[0], events, until_logged=f"failed (ConnectionError: outage {marker})")
            workers += start_workers(settings, 1, first=1)  # its join starts the rebalance
            joined = time.monotonic()
            stopped = _wait_exit(down[0], 90)
            stop_s = time.monotonic() - joined
            log = tail(down[0].log_file, 40)
            assert stopped, f"the first worker kept running through the rebalance:\n{log}"
            assert logged(down[0], "still failing as the worker stops or gives its partitions up") > gave_up, log
            assert stop_s < 60, f"the first worker stopped {stop_s:.0f} s after the join, past the rebalance timeout"

            wait_ready(settings, workers[1:])
            missing = _unanswered(predictions, events)
        finally:
            stop_workers(workers)
    assert not missing, f"{len(missing)} clicks never answered; second worker's log:\n{tail(workers[1].log_file, 40)}"
