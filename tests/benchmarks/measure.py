"""One benchmark phase: publish clicks (paced or at full speed) and time every answer read back.

The same measurement serves all three pipelines: the bench publishes, the pipeline under test answers
on an output topic, and the bench reads the answers. Throughput and latency come from the same three
clocks for each (`stats.Answer`), so the figures compare like for like.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from confluent_kafka import Message

from streams.consumer import TopicReader
from streams.producer import ClickProducer, Pacer
from streams.settings import Settings
from tests.benchmarks.stats import Answer
from tests.benchmarks.workload import Payload

Progress = Callable[[str], None]
PROGRESS_EVERY_S = 5.0


@dataclass(frozen=True)
class Decoded:
    event_id: str
    stages: dict[str, float] | None = None
    model_version: str | None = None


def decode_prediction(msg: Message) -> Decoded:
    """A PredictionEvent (the clickcast workers and the naive loop both write them)."""
    event = json.loads(msg.value())
    stages = {k: v for k, v in event["latency"].items() if v is not None}
    return Decoded(event["event_id"], stages, event.get("model_version"))


def decode_click(msg: Message) -> Decoded:
    """The click itself, copied by the Kafka pass-through."""
    return Decoded(json.loads(msg.value())["event_id"])


@dataclass
class PhaseResult:
    name: str
    offered_eps: float | None  # None: producer at full speed
    sent: int
    answers: list[Answer] = field(default_factory=list)
    model_versions: set[str] = field(default_factory=set)


def _publish(producer: ClickProducer, payloads: Sequence[Payload], rate: float | None, published: dict) -> None:
    """Send the payloads, recording for each (when it was due, when it went). At a fixed rate an event is due at
    its slot in the schedule: a sender that fell behind (it shares the cores with the pipeline) would otherwise
    start a late event's clock late and hide the wait a real client at that rate would see."""
    pacer = Pacer(rate=rate)
    start = time.time()
    for i, payload in enumerate(payloads):
        pacer.wait(0.0)
        now = time.time()
        published[payload.event_id] = (start + i / rate if rate else now, now)
        producer.send_raw(payload.key, payload.value)
    producer.flush()


def run_phase(
    settings: Settings,
    producer: ClickProducer,
    name: str,
    payloads: Sequence[Payload],
    answers_topic: str,
    decode: Callable[[Message], Decoded],
    rate: float | None,
    expected_eps: float,
    progress: Progress,
    idle_timeout_s: float = 20.0,
) -> PhaseResult:
    """Publish `payloads` with `producer` and collect one answer per event from `answers_topic`.

    The producer is the project's (`ClickProducer`) and lives across phases: its connection set-up
    belongs to the warm-up, not to the first measured events.

    Stops when every event is answered, after `idle_timeout_s` without an answer, or at a deadline
    derived from the pipeline's expected rate (so a stalled pipeline cannot hang the benchmark).
    """
    result = PhaseResult(name, rate, len(payloads))
    if not payloads:
        return result
    prefix = payloads[0].key.split(b"-", 1)[0]
    wanted = {p.event_id for p in payloads}
    published: dict[str, tuple[float, float]] = {}  # event id -> (due, sent)
    seen: dict[str, Answer] = {}
    publish_s = len(payloads) / rate if rate else 0.0
    deadline = time.monotonic() + publish_s + len(payloads) / max(expected_eps, 1.0) * 2.0 + 60.0
    with TopicReader(settings, answers_topic) as reader:
        reader.wait_assigned()
        sender = threading.Thread(target=_publish, args=(producer, payloads, rate, published), daemon=True)
        last_report = time.monotonic()
        sender.start()
        for msg in reader.messages(idle_timeout=idle_timeout_s):
            received = time.time()
            key = msg.key()
            if key is None or not key.startswith(prefix):
                continue
            decoded = decode(msg)
            times = published.get(decoded.event_id)
            if times is None or decoded.event_id in seen:
                continue
            due, sent_at = times
            stages = decoded.stages
            if stages is not None:
                if stages.get("kafka_out_ms") is None and "total_ms" in stages:
                    # The pipeline's total (from the click's Kafka timestamp) ends when it produced the answer; the
                    # rest is Kafka out.
                    stages["kafka_out_ms"] = max(0.0, (received - sent_at) * 1000.0 - stages["total_ms"])
                # Behind schedule before the click was even sent: counted in the end-to-end latency (from the slot),
                # in no stage of the pipeline's.
                stages["send_lag_ms"] = max(0.0, (sent_at - due) * 1000.0)
            seen[decoded.event_id] = Answer(due, msg.timestamp()[1] / 1000.0, received, stages)
            if decoded.model_version:
                result.model_versions.add(decoded.model_version)
            now = time.monotonic()
            if now - last_report > PROGRESS_EVERY_S:
                progress(f"{name}: {len(published)}/{len(payloads)} sent, {len(seen)} answered")
                last_report = now
            if len(seen) == len(wanted) or now > deadline:
                break
        sender.join(timeout=30.0)
    result.answers = list(seen.values())
    return result
