"""A small run of `clickcast bench e2e` on the real stack: every phase answers and the report is complete.

Seconds of load, not the benchmark: the figures are checked for shape and sanity, not against targets.
"""

from __future__ import annotations

import json

import pytest

from streams.commands import SAMPLE_DATA
from tests.benchmarks.e2e import E2EOptions, run_e2e
from tests.benchmarks.report import markdown_table, plot_latency

pytestmark = pytest.mark.integration

STAGES = {"e2e_ms", "send_lag_ms", "kafka_in_ms", "features_ms", "feast_write_ms", "triton_ms"}
STAGES |= {"kafka_out_ms", "total_ms"}  # the pipeline's total, and what the benchmark adds after it


def test_e2e_smoke(stack, tmp_path):
    from deploy.stack.kafka_admin import admin_client

    options = E2EOptions(
        data=SAMPLE_DATA,
        events=200,
        loads=(50.0,),
        load_seconds=2.0,
        find_max=False,
        naive_events=20,
        warmup_events=50,
        triton_seconds=0.5,
        feast_rows=500,  # one batch of the largest size
    )
    lines: list[str] = []
    result = run_e2e(stack, options, lines.append)

    assert result["scaling"]["1"]["answered"] == 200
    assert result["scaling"]["1"]["partitions_per_member"] == [stack.topics.partitions]
    cpu = result["scaling"]["1"]["cpu_ms_per_event"]
    # The worker and Triton's model did the work; the figures add up.
    assert cpu["workers"] > 0 and cpu["triton_model"] > 0
    assert cpu["total"] == pytest.approx(sum(v for k, v in cpu.items() if k != "total"), abs=0.01)
    memory = result["scaling"]["1"]["memory_mb"]  # one worker: its resident memory is at most its peak
    assert 20 < memory["workers"]["resident"] <= memory["workers"]["peak_process"]
    assert memory["triton_model"]["resident"] > 0 and memory["kafka"]["resident"] > 0
    assert result["naive"]["answered"] == 20
    assert result["passthrough"]["answered"] == 200
    assert result["passthrough"]["loads"]["50"]["answered"] == 100
    assert all(result[k] > 0 for k in ("pipeline_eps", "naive_eps", "kafka_passthrough_eps"))
    assert result["scaling"]["1"]["speedup_vs_naive"] == result["speedup_vs_naive"] > 0
    load = result["loads"]["50"]
    assert load["answered"] == 100 and 0 < load["p50_ms"] <= load["p95_ms"] <= load["p99_ms"]
    assert set(load["stages"]) == STAGES
    assert load["cpu_ms_per_event"]["workers"] > 0
    assert set(result["naive"]["stages"]) == STAGES
    assert result["model"]["versions"]
    assert result["data"] == str(SAMPLE_DATA) and result["columns"] == {}  # the default mapping, nothing to record
    assert set(result["components"]["triton"]) == {"1", "64"}
    assert result["components"]["triton"]["1"]["history_mean"] >= 1  # the longest user's history, as sent
    assert set(result["components"]["feast"]) == {"sqlite", "redis"}
    assert all(f["write"]["1"]["push_rows_per_s"] > 0 for f in result["components"]["feast"].values())
    assert result["machine"]["cores"] >= 1 and result["targets"]["pipeline_eps"]["met"] is not None
    assert any("answered" in line for line in lines)

    json.loads(json.dumps(result))  # the report is plain JSON
    assert "| 50 |" in markdown_table(result)
    png = tmp_path / "e2e.png"
    plot_latency(result, png)
    assert png.stat().st_size > 1000

    # Nothing of the run is left on the broker: groups and topics are named after the run.
    admin = admin_client(stack.kafka.bootstrap)
    assert not [t for t in admin.list_topics(timeout=10).topics if t.startswith(result["run_id"])]
    groups = admin.list_consumer_groups().result(timeout=10).valid
    assert not [g.group_id for g in groups if g.group_id.startswith(result["run_id"])]
