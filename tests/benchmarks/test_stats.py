from __future__ import annotations

import math

import pytest

from tests.benchmarks.stats import Answer, is_sustained, next_probe, percentiles, stage_breakdown, throughput


def _answers(n: int, rate: float, latency_s, stages=None) -> list[Answer]:
    """Events published `1/rate` apart, each answered `latency_s(i)` later."""
    out = []
    for i in range(n):
        sent = 1000.0 + i / rate
        done = sent + latency_s(i)
        out.append(Answer(sent, done, done, stages))
    return out


def test_percentiles_of_known_values():
    q = percentiles(range(1, 101))
    assert q["p50_ms"] == pytest.approx(50.5)
    assert q["p99_ms"] == pytest.approx(99.01)
    assert all(math.isnan(v) for v in percentiles([]).values())


def test_throughput_spans_first_publish_to_last_answer():
    answers = _answers(101, rate=100.0, latency_s=lambda i: 0.5)  # 1 s of publishing + 0.5 s
    assert throughput(answers) == pytest.approx(101 / 1.5)
    assert throughput([]) == 0.0


def test_stage_breakdown_has_end_to_end_and_reported_stages():
    answers = _answers(10, rate=10.0, latency_s=lambda i: 0.010, stages={"triton_ms": 4.0})
    breakdown = stage_breakdown(answers)
    assert breakdown["e2e_ms"]["p50_ms"] == pytest.approx(10.0)
    assert breakdown["triton_ms"]["mean_ms"] == pytest.approx(4.0)


def test_steady_latency_at_the_offered_rate_is_sustained():
    assert is_sustained(_answers(500, 100.0, lambda i: 0.005 + 0.001 * (i % 3)), 100.0, 500)


def test_growing_backlog_is_not_sustained():
    # Every event waits longer than the one before: the pipeline falls behind.
    assert not is_sustained(_answers(500, 100.0, lambda i: 0.005 + 0.004 * i), 100.0, 500)


def _queue(n: int, rate: float, service_rate: float, base_s: float) -> list[Answer]:
    """A single server answering at `service_rate` after `base_s` of fixed latency, offered `rate` events/s."""
    out, free = [], 0.0
    for i in range(n):
        sent = 1000.0 + i / rate
        free = max(sent + base_s, free + 1.0 / service_rate)
        out.append(Answer(sent, free, free))
    return out


def test_a_pipeline_2pc_short_of_the_rate_is_not_sustained_however_high_its_latency():
    # 400 events/s for 10 s into a pipeline at 98% of that: ~0.2 s of backlog by the end, on top of a 200 ms base.
    assert not is_sustained(_queue(4000, 400.0, 0.98 * 400.0, 0.2), 400.0, 4000)
    assert not is_sustained(_queue(4000, 400.0, 0.98 * 400.0, 0.02), 400.0, 4000)


def test_a_pipeline_with_spare_capacity_is_sustained_despite_a_late_stall():
    answers = _queue(4000, 400.0, 1.2 * 400.0, 0.1)
    # A 1 s stall of 100 events in the last fifth: the tail's mean would grow by 125 ms, its median does not.
    stalled = [
        Answer(a.published, a.produced + 1.0, a.received + 1.0) if 3300 <= i < 3400 else a
        for i, a in enumerate(answers)
    ]
    assert is_sustained(stalled, 400.0, 4000)


def test_lost_events_or_a_lower_rate_are_not_sustained():
    answers = _answers(500, 100.0, lambda i: 0.005)
    assert not is_sustained(answers[:400], 100.0, 500)
    assert not is_sustained(answers, 200.0, 500)


def test_the_load_search_bisects_on_a_grid_between_sustained_and_failed():
    assert next_probe(100, 500) == 300
    assert next_probe(300, 500) == 400
    assert next_probe(400, 500) == 450
    assert next_probe(450, 500) == 475
    assert next_probe(475, 500) is None  # no grid point left between them
    assert next_probe(0, 854) == 425
