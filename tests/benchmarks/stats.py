"""Pure figures from per-event timings: throughput, latency percentiles, per-stage breakdown, sustain check."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

QUANTILES = {"p50_ms": 50.0, "p95_ms": 95.0, "p99_ms": 99.0}


@dataclass(frozen=True)
class Answer:
    """One answered event, all times in unix seconds."""

    published: float  # the click was due (at a fixed rate: its slot in the schedule) and handed to the producer
    produced: float  # the answer's Kafka timestamp: when the pipeline produced it
    received: float  # the bench's reader got the answer
    stages: dict[str, float] | None = None  # per-stage milliseconds the pipeline reported, if any

    @property
    def latency_ms(self) -> float:
        return (self.received - self.published) * 1000.0


def percentiles(values_ms: Iterable[float]) -> dict[str, float]:
    values = np.fromiter(values_ms, dtype=np.float64)
    if values.size == 0:
        return {name: float("nan") for name in QUANTILES}
    return {name: round(float(np.percentile(values, q)), 3) for name, q in QUANTILES.items()}


def throughput(answers: Sequence[Answer]) -> float:
    """Answered events per second, from the first publish to the last answer produced."""
    if not answers:
        return 0.0
    span = max(a.produced for a in answers) - min(a.published for a in answers)
    return len(answers) / span if span > 0 else float("inf")


def stage_breakdown(answers: Sequence[Answer]) -> dict[str, dict[str, float]]:
    """Percentiles and mean of every stage the answers report, plus `e2e_ms` (publish -> answer read)."""
    by_stage: dict[str, list[float]] = {"e2e_ms": [a.latency_ms for a in answers]}
    for answer in answers:
        for name, value in (answer.stages or {}).items():
            by_stage.setdefault(name, []).append(value)
    return {
        name: {**percentiles(values), "mean_ms": round(float(np.mean(values)), 3) if values else float("nan")}
        for name, values in by_stage.items()
    }


# A pipeline that answers a fraction f short of the offered rate builds a queue whose wait grows by about f seconds
# every second: keeping up means latency grows by less than 1% of the time elapsed.
MAX_LATENCY_GROWTH = 0.01


def is_sustained(answers: Sequence[Answer], offered_eps: float, expected: int) -> bool:
    """The pipeline kept up: (nearly) every event answered, at the offered rate, without a growing backlog.

    A backlog shows as latency that rises over the run. The medians of the first and the last fifth of the events
    (by publish time), robust to a lone stall, give how fast it rose: at most MAX_LATENCY_GROWTH seconds a second,
    i.e. the pipeline fell less than ~1% short of the offered rate. This does not depend on how high the latency
    was to begin with.
    """
    if len(answers) < 0.99 * expected or len(answers) < 10:
        return False
    if throughput(answers) < 0.95 * offered_eps:
        return False
    ordered = sorted(answers, key=lambda a: a.published)
    fifth = max(1, len(ordered) // 5)
    head, tail = ordered[:fifth], ordered[-fifth:]
    elapsed = float(np.median([a.published for a in tail]) - np.median([a.published for a in head]))
    growth = float(np.median([a.latency_ms for a in tail]) - np.median([a.latency_ms for a in head])) / 1000.0
    return elapsed <= 0 or growth <= MAX_LATENCY_GROWTH * elapsed


def next_probe(sustained: float, failed: float, step: float = 25.0) -> float | None:
    """The load to try between the highest sustained and the lowest failed one (bisection on a `step` grid),
    or None when no grid point lies strictly between them."""
    middle = round((sustained + failed) / 2 / step) * step
    return middle if sustained < middle < failed else None
