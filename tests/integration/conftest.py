import os
import shutil
import threading
import time
import warnings

import pytest

from deploy.stack.triton import model_versions
from features.compute import compute_features
from features.history import Visit
from features.store import build_store, read_features
from schemas.csv_source import iter_click_events, read_events_frame
from schemas.events import ClickEvent, PredictionEvent
from streams.commands import SAMPLE_DATA
from streams.producer import ClickProducer, Pacer
from streams.settings import Settings, get_settings

# Tests export into the stack's repository with this: an export's pruning would delete the versions that were there
# before the session, which the session's cleanup leaves to serve.
KEEP_ALL = 1_000_000


def run_events(run_id: str, limit: int | None = None) -> list[ClickEvent]:
    """The sample's clicks (its first `limit`), users and event ids prefixed with `run_id`: a test run is independent
    of what earlier runs left in the topics, the workers' tables and the online store."""
    frame = read_events_frame(SAMPLE_DATA, limit=limit)
    frame["event_id"] = run_id + ":" + frame["event_id"]
    frame["user_id"] = run_id + "-" + frame["user_id"]
    return list(iter_click_events(frame))


def paced_producer(
    settings: Settings, events: list[ClickEvent], rate: float, sent: list[str], stop: threading.Event | None = None
) -> threading.Thread:
    """A started thread that sends `events` at `rate` a second, adding each one's id to `sent` once it is handed to
    the client; it stops early once `stop` is set, and ends once the client has flushed."""

    def produce() -> None:
        pacer = Pacer(rate=rate)
        with ClickProducer(settings) as producer:
            for event in events:
                if stop is not None and stop.is_set():
                    break
                pacer.wait(event.timestamp)
                producer.send(event)
                sent.append(event.event_id)

    thread = threading.Thread(target=produce, daemon=True)
    thread.start()
    return thread


def same_features(got: dict, expected: dict) -> bool:
    """Equal names and values; floats within what float32-free storage round trips allow."""
    return all(
        got[name] == value if isinstance(value, str) else got[name] == pytest.approx(value, rel=1e-9, abs=1e-9)
        for name, value in expected.items()
    )


def histories_kept(events: list[ClickEvent]) -> dict[str, list[Visit]]:
    """Each user's visits in send order, as the trainer keeps them: a resent copy (same item and time) once."""
    by_user: dict[str, list[Visit]] = {}
    kept = set()
    for e in events:
        if (e.user_id, e.item_id, e.timestamp) not in kept:
            kept.add((e.user_id, e.item_id, e.timestamp))
            by_user.setdefault(e.user_id, []).append(Visit(e.event_id, e.timestamp, e.item_id, e.latitude, e.longitude))
    return by_user


def assert_online_features(settings: Settings, by_user: dict[str, list[Visit]]) -> None:
    """The online store holds, per user, the features as of the user's newest event, computed by the same function
    offline over all the user's visits."""
    users = sorted(by_user)
    for user, row in zip(users, read_features(build_store(settings), users), strict=True):
        visits = sorted(by_user[user], key=lambda v: v.ts)
        expected = compute_features(visits, visits[-1])
        assert same_features(row, expected), (user, row, expected)


def late_answers(predictions, run_id: str, idle_s: float = 5.0) -> int:
    """Answers to this run's clicks still arriving once every click was answered (read until `idle_s` passes without a
    message): a loop that stops at the last new answer cannot see a second answer that comes after it."""
    return sum(
        PredictionEvent.model_validate_json(msg.value()).event_id.startswith(run_id)
        for msg in predictions.messages(idle_timeout=idle_s)
    )


def injected_env(directory, script: str) -> dict[str, str]:
    """The env that runs `script` in a worker as it starts: a `sitecustomize` module in `directory`, put first on its
    PYTHONPATH."""
    (directory / "sitecustomize.py").write_text(script)
    return {"PYTHONPATH": os.pathsep.join(p for p in (str(directory), os.environ.get("PYTHONPATH")) if p)}


def logged(worker, text: str) -> int:
    """How often `text` appears in a worker's log file (which carries earlier runs too)."""
    try:
        return worker.log_file.read_text(errors="replace").count(text)
    except OSError:
        return 0


@pytest.fixture(scope="session", autouse=True)
def _remove_versions_the_tests_export():
    """The rollout and parity tests export versions into the stack's model repository (~11 MB each); remove them
    after the session, so repeated runs do not fill a checkout. Triton's poll then serves the newest one left."""
    settings = get_settings()
    repository, name = settings.model_repository, settings.triton.model_name
    before = set(model_versions(repository, name))
    yield
    added = set(model_versions(repository, name)) - before
    for version in added:
        shutil.rmtree(repository / name / str(version), ignore_errors=True)
    gone = before - set(model_versions(repository, name))
    if gone:  # e.g. pruned by an export: the checkout would be left without the model it served
        pytest.fail(f"versions {sorted(gone)} of {name}, there before the tests, are gone")
    if added and before:
        _wait_unserved(settings, name, max(before), added)


def _wait_unserved(settings, name: str, version: int, removed: set[int], timeout_s: float = 120.0) -> None:
    """Until Triton's poll serves `version` again and none of `removed`: a session started right after this one
    must not meet a version that is gone from the repository still answering."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(settings.triton.http_url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                ready = client.is_model_ready(name, str(version))
                if ready and not any(client.is_model_ready(name, str(v)) for v in removed):
                    return
            except Exception:  # the stack went down meanwhile: nothing left to wait for
                return
            time.sleep(1.0)
    finally:
        client.close()
    warnings.warn(f"Triton still serves a removed version of {name} after {timeout_s:.0f} s", stacklevel=1)
