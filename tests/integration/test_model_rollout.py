"""A newer model version rolls out to the running Triton while workers stream: no event is lost, and every prediction
names the version that produced it, also when the new version takes histories of another length and answers another
number of items."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from deploy.stack.triton import model_versions, wait_served
from schemas.events import PredictionEvent
from streams.consumer import TopicReader
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready
from tests.integration.conftest import KEEP_ALL, late_answers, paced_producer, run_events
from trainer.serving.export import export_model
from trainer.serving.triton_config import DEFAULT_TOP_K

pytestmark = pytest.mark.integration

RATE = 50.0  # events/s: slow enough to span the new version's load
MAX_STREAM_S = 240.0


def _another_shape(out: Path) -> Path:
    """A tiny model of another history length (12) and top-k (5) than the served one, trained in seconds."""
    from tests.trainer.conftest import tiny_config
    from tests.trainer.synthetic import habitual_frame
    from trainer.data import from_frame
    from trainer.model import ClickcastRecommender

    rec = ClickcastRecommender(tiny_config())
    rec.fit(*from_frame(habitual_frame(n_users=16, days=40)))
    rec.save(out)
    return out


@pytest.mark.parametrize("shape", ["same", "other"], ids=["same-shape", "another-history-length-and-top-k"])
def test_new_version_rolls_out_without_losing_events(stack, tmp_path, shape):
    settings = get_settings()
    repository, name = settings.model_repository, settings.triton.model_name
    served = model_versions(repository, name)
    assert served, "no model version to roll out from"
    if shape == "same":
        source, top_k = repository / name / str(served[-1]), DEFAULT_TOP_K
    else:  # every request of the old shape fails once it loads: the workers must read the new one
        source, top_k = _another_shape(tmp_path / "tiny"), 5
    run_id = uuid.uuid4().hex[:8]
    events = run_events(run_id)
    sent: list[str] = []
    stop = threading.Event()
    workers = start_workers(settings, 1)
    try:
        wait_ready(settings, workers)
        with TopicReader(settings, settings.topics.predictions) as predictions:
            predictions.wait_assigned()
            producer = paced_producer(settings, events, RATE, sent, stop)
            time.sleep(3)
            new_version = export_model(source, repository, name, top_k=top_k, keep=KEEP_ALL)
            versions: dict[str, str] = {}
            answers: dict[str, list] = {}
            copies = 0
            deadline = time.monotonic() + MAX_STREAM_S
            for msg in predictions.messages(idle_timeout=120):
                p = PredictionEvent.model_validate_json(msg.value())
                if not p.event_id.startswith(run_id):
                    continue
                copies += 1
                versions[p.event_id] = p.model_version
                answers[p.event_id] = p.items
                rolled = str(new_version) in versions.values()
                if rolled and not stop.is_set():
                    time.sleep(2)  # a little traffic on the new version, then stop producing
                    stop.set()
                    # Joined here, not after the loop: once `sent` is final, the answer that completes it ends the
                    # loop, where a producer still flushing at that answer would leave the loop to its idle timeout.
                    producer.join(timeout=30)
                if (stop.is_set() and not producer.is_alive() and set(sent) <= set(versions)) or (
                    time.monotonic() > deadline
                ):
                    break
            stop.set()
            producer.join(timeout=30)
            copies += late_answers(predictions, run_id)
    finally:
        stop_workers(workers)
        if shape == "other":  # the tests after this one expect the served model back
            restored = export_model(repository / name / str(served[-1]), repository, name, keep=KEEP_ALL)
            assert wait_served(settings.triton.http_url, name, restored, 120.0) is not None, "original not served again"

    assert sent, "nothing was produced"
    assert set(sent) <= set(versions), f"{len(set(sent) - set(versions))} events unanswered"
    assert copies == len(sent)
    in_order = [versions[e] for e in sent]
    assert in_order[0] == str(served[-1])
    assert in_order[-1] == str(new_version)
    # Once the new version answers, the old one does not come back (Triton serves the newest only).
    first_new = in_order.index(str(new_version))
    assert set(in_order[first_new:]) == {str(new_version)}
    assert {len(answers[e]) for e in sent[first_new:]} == {top_k}
