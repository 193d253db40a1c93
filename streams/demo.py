"""`clickcast demo`: real events through the real stack, predictions shown live, then a summary."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd
from pydantic import ValidationError

from schemas.csv_source import iter_click_events
from schemas.events import PredictionEvent
from streams.commands import warn_refused
from streams.consumer import TopicReader
from streams.producer import ClickProducer, Pacer, replay
from streams.render import message_line, render_dead_letter, render_prediction
from streams.settings import get_settings
from streams.workers import start_workers, stop_workers, wait_ready

# A few hostile events to show the dead-letter path next to the real ones.
MALFORMED = (
    b"not json at all",
    b'{"event_id": "bad-1", "user_id": "u", "item_id": "i", "latitude": 40.7, "longitude": -74.0}',
    b'{"event_id": "bad-2", "user_id": "u", "item_id": "i", "event_time": "2012-05-01T10:00:00Z",'
    b' "latitude": 123.0, "longitude": -74.0}',
    b'{"event_id": "bad-3", "user_id": "u", "item_id": "i", "event_time": "2099-01-01T00:00:00Z",'
    b' "latitude": 40.7, "longitude": -74.0}',
)
SHOW_PER_SECOND = 8  # live lines; the summary covers the rest


def run(frame: pd.DataFrame, rate: float | None, workers: int) -> int:
    settings = get_settings()
    refused: list[tuple[str, str]] = []
    events = list(iter_click_events(frame, on_invalid=lambda event_id, reason: refused.append((event_id, reason))))
    warn_refused(refused)
    wanted = {e.event_id for e in events}
    print(f"demo: {len(events)} real check-ins, {len(MALFORMED)} malformed events, {workers} worker(s)")
    procs = start_workers(settings, workers)
    try:
        t0 = time.monotonic()
        wait_ready(settings, procs)
        print(f"workers ready in {time.monotonic() - t0:.1f}s")
        with (
            TopicReader(settings, settings.topics.predictions) as predictions,
            TopicReader(settings, settings.topics.dead_letters) as dead_letters,
        ):
            predictions.wait_assigned()
            dead_letters.wait_assigned()
            producer = ClickProducer(settings)
            started = time.monotonic()
            sender = threading.Thread(
                target=lambda: (
                    [producer.send_raw(b"demo", raw) for raw in MALFORMED],
                    replay(events, producer, Pacer(rate=rate)),
                ),
                daemon=True,
            )
            sender.start()
            latencies, versions, answered, stages = [], set(), set(), []
            shown, window_start = 0, time.monotonic()
            for msg in predictions.messages(idle_timeout=60.0):
                received = datetime.now(UTC)
                try:
                    p = PredictionEvent.model_validate_json(msg.value() or b"")
                except ValidationError:
                    continue  # another producer's message or a tombstone: none of this demo's answers
                if p.event_id not in wanted:
                    continue
                answered.add(p.event_id)
                versions.add(p.model_version)
                latencies.append((received - p.published_at).total_seconds() * 1000.0)
                stages.append(
                    (p.latency.kafka_in_ms, p.latency.features_ms, p.latency.feast_write_ms, p.latency.triton_ms)
                )
                if time.monotonic() - window_start > 1.0:
                    shown, window_start = 0, time.monotonic()
                if shown < SHOW_PER_SECOND:
                    print(render_prediction(msg.value()), flush=True)
                    shown += 1
                if len(answered) == len(wanted):
                    break
            elapsed = time.monotonic() - started
            sender.join(timeout=5)
            dead = [message_line(m, render_dead_letter) for m in dead_letters.messages(idle_timeout=3.0)]
    finally:
        stop_workers(procs)
    for line in dead:
        print("dead letter:", line)
    lat = np.array(latencies) if latencies else np.array([np.nan])
    print(
        f"\nsummary: {len(events)} events, {len(answered)} predictions ({len(wanted) - len(answered)} missing), "
        f"{len(dead)} dead letters, {len(answered) / elapsed:.0f} events/s over {elapsed:.1f}s, "
        f"latency publish->prediction p50 {np.percentile(lat, 50):.1f} ms, p99 {np.percentile(lat, 99):.1f} ms, "
        f"model version(s) {', '.join(sorted(versions)) or '-'}"
    )
    if stages:
        medians = np.median(np.array(stages), axis=0)
        print(
            "median per stage: kafka in {:.1f} ms, features {:.2f} ms, feast write {:.1f} ms, triton {:.1f} ms".format(
                *medians
            )
        )
    return 0 if len(answered) == len(wanted) and len(dead) >= len(MALFORMED) else 1
