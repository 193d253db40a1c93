"""`clickcast bench e2e`: clickcast's pipeline, the naive pipeline and Kafka pass-through in one run.

Every run uses topics of its own (`<run id>.clicks`, `.predictions`, `.dlq`, with the configured
partition count), deleted afterwards: other engineers' workers on the shared `clicks` topic would
otherwise answer the benchmark's events too. Phases, each with its own id prefix (see workload.py):
1. for each worker count: start the workers in a fresh consumer group, warm up, then throughput with
   the producer at full speed; partitions per group member. The first worker count also gets
   2. latency at each fixed offered load and at the highest load it sustains (bisected between the highest
   sustained and the lowest failed load).
3. the naive pipeline (relay.py), producer at full speed.
4. the Kafka pass-through (relay.py), producer at full speed.
5. component figures (components.py).
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deploy.stack.stack import status
from streams.producer import ClickProducer
from streams.settings import Settings
from tests.benchmarks import components, report
from tests.benchmarks.cpu import CpuMeter
from tests.benchmarks.measure import PhaseResult, decode_click, decode_prediction, run_phase
from tests.benchmarks.memory import memory_mb
from tests.benchmarks.processes import Relay, WorkerGroup, delete_topics, wait_for_leaders
from tests.benchmarks.profile import Profiler, triton_model_pids
from tests.benchmarks.stats import is_sustained, next_probe, percentiles, stage_breakdown, throughput
from tests.benchmarks.workload import Workload

Progress = Callable[[str], None]
MAX_SEARCH_STEPS = 3


@dataclass(frozen=True)
class E2EOptions:
    data: Path
    events: int = 20000  # full-speed runs of the pipeline and the pass-through
    workers: Sequence[int] = (1,)
    loads: Sequence[float] = (100.0, 500.0, 1000.0)
    load_seconds: float = 10.0
    find_max: bool = True
    naive_events: int = 1000  # the naive loop's rate settles quickly; it is ~100x slower
    # Streamed (unmeasured) before each throughput run under the same users, so the model sees histories as
    # long as in steady state rather than the few events of a fresh replay.
    prefill_events: int = 0
    warmup_events: int = 200
    with_components: bool = True
    triton_seconds: float = 5.0
    feast_rows: int = 5000
    profile_dir: Path | None = None  # py-spy the workers and Triton's model during each throughput run and load


def _history_figures(lengths: list[int], model_history: int) -> dict[str, float]:
    ordered = sorted(lengths)
    return {
        "mean": round(sum(ordered) / len(ordered), 1),
        "p50": ordered[len(ordered) // 2],
        "p90": ordered[int(len(ordered) * 0.9)],
        "at_cap_share": round(sum(x == model_history for x in ordered) / len(ordered), 3),
    }


def _figures(phase: PhaseResult) -> dict[str, Any]:
    answers = phase.answers
    out: dict[str, Any] = {
        "events": phase.sent,
        "answered": len(answers),
        "achieved_eps": round(throughput(answers), 1),
        **percentiles(a.latency_ms for a in answers),
        "stages": stage_breakdown(answers),
    }
    if phase.offered_eps is not None:
        out["offered_eps"] = phase.offered_eps
        out["sustained"] = is_sustained(answers, phase.offered_eps, phase.sent)
    return out


def run_topics(settings: Settings, run_id: str) -> Settings:
    """Settings whose stream topics are the run's own; creates them."""
    from deploy.stack.topics import ensure_topics

    topics = settings.topics.model_copy(
        update={"clicks": f"{run_id}.clicks", "predictions": f"{run_id}.predictions", "dead_letters": f"{run_id}.dlq"}
    )
    settings = settings.model_copy(update={"topics": topics})
    ensure_topics(settings)
    wait_for_leaders(settings, [topics.clicks, topics.predictions, topics.dead_letters])
    return settings


class _Run:
    def __init__(self, settings: Settings, options: E2EOptions, progress: Progress, workload: Workload) -> None:
        self.workload = workload
        self.run_id = "b" + uuid.uuid4().hex[:8]
        self.settings = run_topics(settings, self.run_id)
        self.options = options
        self.progress = progress
        self.versions: set[str] = set()
        self.producer = ClickProducer(self.settings)
        # Fixed-rate loads publish each event as it happens: a 5 ms linger batches nothing at these rates and
        # would only add its 5 ms to every latency (clickcast's, the naive loop's and the pass-through's alike).
        self.paced_producer = ClickProducer(self.settings, **{"linger.ms": 0})
        self._phases = 0
        # Where the replay of the current worker group's users stands: latency loads continue the users of
        # the throughput run, so the model sees the histories those built up, not empty ones.
        self._cursor: tuple[str, int] | None = None
        self.model_history = components.history_length(components.served_config(settings))  # events it reads

    def _prefix(self) -> str:
        self._phases += 1
        return f"{self.run_id}p{self._phases}"

    def _payloads(self, n: int):
        return self.workload.payloads(n, self._prefix())

    def _phase(
        self,
        name: str,
        n: int,
        topic: str,
        decode,
        rate: float | None,
        expected_eps: float,
        idle_s: float = 20.0,
        payloads=None,
    ) -> PhaseResult:
        payloads = payloads if payloads is not None else self._payloads(n)
        what = f"{rate:g} events/s" if rate else "full speed"
        self.progress(f"{name}: {n} events at {what}")
        result = run_phase(
            self.settings,
            self.paced_producer if rate else self.producer,
            name,
            payloads,
            topic,
            decode,
            rate,
            expected_eps,
            self.progress,
            idle_s,
        )
        self.versions |= result.model_versions
        q = percentiles(a.latency_ms for a in result.answers)
        self.progress(
            f"{name}: {len(result.answers)}/{n} answered, {throughput(result.answers):.0f} events/s, "
            f"p50 {q['p50_ms']:.1f} ms, p99 {q['p99_ms']:.1f} ms"
        )
        return result

    def pipeline(self, count: int, with_loads: bool) -> dict[str, Any]:
        o, predictions = self.options, self.settings.topics.predictions
        group = WorkerGroup(self.settings, count, f"{self.run_id}-w{count}")
        self.progress(f"starting {count} clickcast worker(s) in group {group.app_id}")
        with group:
            started_s = group.start()
            members = group.partitions_per_member()
            self.progress(f"workers ready in {started_s:.1f}s; partitions per member: {members}")
            # The warm-up also lets the group settle: faust may rebalance once more after every worker
            # holds partitions, and events published meanwhile can be answered late (not counted here).
            self._phase(f"pipeline x{count} warm-up", o.warmup_events, predictions, decode_prediction, None, 100.0, 5.0)
            prefix, start = self._prefix(), o.prefill_events
            if start:
                prefill = self.workload.payloads(start, prefix)
                self._phase(
                    f"pipeline x{count} prefill", start, predictions, decode_prediction, None, 200.0, 20.0, prefill
                )
            profiler = self._profiler(group, f"x{count}")
            meter = self._cpu_meter(group)
            measured = self.workload.payloads(o.events, prefix, start)  # built before the clock and the meter start
            meter.start()
            full = self._phase(
                f"pipeline x{count} throughput",
                o.events,
                predictions,
                decode_prediction,
                None,
                500.0,
                payloads=measured,
            )
            cpu = meter.stop(len(full.answers))
            memory = memory_mb(meter.groups)
            profile = profiler.stop() if profiler else None
            eps = throughput(full.answers)
            self._cursor = (prefix, start + o.events)
            self.progress(f"pipeline x{count} CPU ms per event: {cpu}")
            self.progress(f"pipeline x{count} resident MiB after it: {memory}")
            out: dict[str, Any] = {
                "eps": round(eps, 1),
                "events": full.sent,
                "answered": len(full.answers),
                "start_s": round(started_s, 1),
                "partitions_per_member": members,
                "balanced": bool(members) and max(members) - min(members) <= 1,
                "stages": stage_breakdown(full.answers),
                "cpu_ms_per_event": cpu,
                "memory_mb": memory,
                # The model's input length (newest event included): a phase's users start with empty histories
                # unless prefilled.
                "prefill_events": start,
                "history_events": self._history(full.sent, start),
                "worker_logs": [str(p) for p in group.log_files],
            }
            if profile:
                out["profile"] = profile
            if with_loads:
                out["loads"] = self._loads(eps, group)
        return out

    def _cpu_meter(self, group: WorkerGroup) -> CpuMeter:
        stack = {s.name: [s.pid] for s in status(self.settings) if s.pid}
        triton = stack.get("triton", [None])[0]
        return CpuMeter(
            {
                "workers": group.pids(),
                "triton_model": triton_model_pids(self.settings.triton.model_name, triton),
                "triton_server": stack.get("triton", []),
                "kafka": stack.get("kafka", []),
                "redis": stack.get("redis", []),  # the online store's server side, when Feast is on Redis
                "benchmark_client": [os.getpid()],  # its producer and the reader of predictions
            }
        )

    def _history(self, n: int, start: int) -> dict:
        lengths = self.workload.history_lengths(n, self.model_history, self.settings.stream, start)
        return _history_figures(lengths, self.model_history)

    def _profiler(self, group: WorkerGroup, phase: str) -> Profiler | None:
        if self.options.profile_dir is None:
            return None
        workers = {f"worker-{i}": pid for i, pid in enumerate(group.pids())}
        model = self.settings.triton.model_name
        triton = next((s.pid for s in status(self.settings) if s.name == "triton"), None)
        models = {f"triton-{model}-{i}": pid for i, pid in enumerate(triton_model_pids(model, triton))}
        profiler = Profiler(workers, models, self.options.profile_dir / phase)
        profiler.start()
        self.progress(f"profiling {', '.join(profiler.pids)} with py-spy into {profiler.directory}")
        return profiler

    def _load(self, rate: float, expected_eps: float, group: WorkerGroup) -> dict[str, Any]:
        n = max(20, int(rate * self.options.load_seconds))
        prefix, start = self._cursor
        self._cursor = (prefix, start + n)
        payloads = self.workload.payloads(n, prefix, start)
        profiler = self._profiler(group, f"load-{rate:g}")
        meter = self._cpu_meter(group)
        meter.start()
        phase = self._phase(
            f"pipeline at {rate:g}/s",
            n,
            self.settings.topics.predictions,
            decode_prediction,
            rate,
            expected_eps,
            payloads=payloads,
        )
        out = _figures(phase)
        # Includes the idle wait for the last answers: an upper bound, comparable between loads.
        out["cpu_ms_per_event"] = meter.stop(len(phase.answers))
        if profiler:
            out["profile"] = profiler.stop()
        out["history_events"] = self._history(n, start)
        return out

    def _loads(self, full_speed_eps: float, group: WorkerGroup) -> dict[str, Any]:
        loads = {f"{rate:g}": self._load(rate, full_speed_eps, group) for rate in self.options.loads}
        if not self.options.find_max:
            return loads
        # Bisect between the highest sustained load and the lowest failed one, the fixed loads included.
        sustained = max((v["offered_eps"] for v in loads.values() if v["sustained"]), default=0.0)
        failed = min((v["offered_eps"] for v in loads.values() if not v["sustained"]), default=full_speed_eps)
        best = loads.get(f"{sustained:g}")
        for _ in range(MAX_SEARCH_STEPS):
            candidate = next_probe(sustained, min(failed, full_speed_eps))
            if candidate is None:
                break
            figures = self._load(candidate, full_speed_eps, group)
            if figures["sustained"]:
                sustained, best = candidate, figures
            else:
                self.progress(f"{candidate:g} events/s not sustained")
                failed = candidate
        if best is not None:
            loads["max"] = best
        return loads

    def relay(
        self, mode: str, n: int, topic: str, decode, expected_eps: float, paced: float | None = None
    ) -> dict[str, Any]:
        """Full-speed throughput of a relay, and with `paced`, its latency at that offered load."""
        relay = Relay(self.settings, mode, f"{self.run_id}-{mode}", topic)
        self.progress(f"starting the {mode} relay")
        with relay:
            self.progress(f"{mode} relay ready in {relay.start():.1f}s")
            self._phase(f"{mode} warm-up", min(20, n), topic, decode, None, expected_eps, 5.0)
            figures = _figures(self._phase(mode, n, topic, decode, None, expected_eps))
            if paced is not None:
                n_paced = max(20, int(paced * self.options.load_seconds))
                phase = self._phase(f"{mode} at {paced:g}/s", n_paced, topic, decode, paced, expected_eps)
                figures["loads"] = {f"{paced:g}": _figures(phase)}
        return figures

    def passthrough(self) -> dict[str, Any]:
        from confluent_kafka.admin import NewTopic

        from deploy.stack.kafka_admin import admin_client

        topic = f"{self.run_id}.passthrough"
        admin = admin_client(self.settings.kafka.bootstrap)
        admin.create_topics([NewTopic(topic, self.settings.topics.partitions, 1)])[topic].result(timeout=30)
        wait_for_leaders(self.settings, [topic])
        # Latency at the lowest offered load too: the floor that Kafka and its clients set.
        lowest = min(self.options.loads, default=None)
        return self.relay("passthrough", self.options.events, topic, decode_click, 5000.0, paced=lowest)


def run_e2e(
    settings: Settings, options: E2EOptions, progress: Progress, workload: Workload | None = None
) -> dict[str, Any]:
    """`workload`: the events of `options.data`, if the caller has read them already."""
    began = time.time()
    run = _Run(settings, options, progress, workload or Workload(options.data))
    progress(
        f"run {run.run_id}: {len(run.workload)} events from {options.data.name}, model "
        f"{settings.triton.model_name}, feast {settings.feast.online_store}"
    )
    result: dict[str, Any] = {
        "run_id": run.run_id,
        "machine": report.machine(),
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(began)),
        "data": str(options.data),
        "data_events": len(run.workload),
        "columns": run.workload.mapping.model_dump(exclude_defaults=True),  # how the file was read, where not default
        "online_store": settings.feast.online_store,
        "workers": options.workers[0],
        "events": options.events,
        "partitions": settings.topics.partitions,
    }
    try:
        _measure(run, result)
    finally:
        delete_topics(settings, run.run_id)
    result["targets"] = report.targets(result)
    result["machine"]["loadavg_1m_at_end"] = round(os.getloadavg()[0], 2)
    result["duration_s"] = round(time.time() - began, 1)
    return result


def _measure(run: _Run, result: dict[str, Any]) -> None:
    options, settings, progress = run.options, run.settings, run.progress
    scaling = {}
    for i, count in enumerate(options.workers):
        scaling[str(count)] = run.pipeline(count, with_loads=i == 0)
    primary = scaling[str(options.workers[0])]
    result["pipeline_eps"] = primary["eps"]
    result["loads"] = primary.pop("loads")
    result["pipeline_stages"] = primary["stages"]
    result["scaling"] = scaling

    naive = run.relay("naive", options.naive_events, settings.topics.predictions, decode_prediction, 50.0)
    result["naive_eps"] = naive["achieved_eps"]
    result["naive"] = naive
    passthrough = run.passthrough()
    result["kafka_passthrough_eps"] = passthrough["achieved_eps"]
    result["passthrough"] = passthrough
    for figures in scaling.values():
        figures["speedup_vs_naive"] = round(figures["eps"] / result["naive_eps"], 1) if result["naive_eps"] else None
    result["speedup_vs_naive"] = primary["speedup_vs_naive"]  # the headline: the first worker count's
    result["model"] = {"name": settings.triton.model_name, "versions": sorted(run.versions)}

    if options.with_components:
        progress("components: triton")
        result["components"] = {
            "triton": components.triton_rows_per_s(settings, run.workload.events, seconds=options.triton_seconds)
        }
        progress(f"components: feast ({', '.join(components.FEAST_STORES)}, {options.feast_rows} rows)")
        result["components"]["feast"] = components.feast_figures(options.feast_rows)
