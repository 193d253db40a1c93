"""`clickcast bench e2e|components|processor`: the benchmarks of tests/benchmarks/ (the first two on the running
stack)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

from streams.cli import CliError, checked, columns_option, positive
from streams.commands import DEFAULT_DATA_HELP
from streams.settings import PROJECT_ROOT, model_name

HEALTH_WAIT_S = 30.0  # how long a benchmark waits for an unhealthy service before giving up


def output_file(text: str) -> Path:
    """An argparse type: a file path the results can be written to, checked before a run that may take minutes."""
    path = Path(text)
    if path.is_dir():
        raise argparse.ArgumentTypeError(f"{text} is a folder, not a file")
    if path.exists() and not os.access(path, os.W_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: the file is read-only")
    existing = next(p for p in path.absolute().parents if p.exists())
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise argparse.ArgumentTypeError(f"cannot write {text}: {existing} is not a writable folder")
    return path


def _numbers(kind):
    """An argparse type: comma-separated positive numbers, each once."""
    one = positive(kind)

    def parse(text: str):
        values = [one(part) for part in text.split(",")]
        if len(set(values)) < len(values):
            raise argparse.ArgumentTypeError(f"each value once, got {text}")
        return values

    return parse


def _feast_rows(text: str) -> int:
    """At least one batch of the Feast benchmark's largest size."""
    from features.store_benchmark import BATCH_SIZES

    rows = positive(int)(text)
    if rows < max(BATCH_SIZES):
        raise argparse.ArgumentTypeError(f"must be at least {max(BATCH_SIZES)}, got {text}")
    return rows


def register(sub: argparse._SubParsersAction) -> None:
    bench = sub.add_parser("bench", help="benchmarks on the running stack (pipeline vs naive vs Kafka, components)")
    bench_sub = bench.add_subparsers(dest="bench_command", required=True, metavar="BENCHMARK")

    e2e = bench_sub.add_parser("e2e", help="throughput and latency of clickcast vs the naive pipeline vs Kafka")
    e2e.add_argument("--events", type=positive(int), default=20000, help="events of each full-speed run")
    e2e.add_argument(
        "--json", type=output_file, default=Path("artifacts/bench/e2e.json"), help="result (.png, .md beside)"
    )
    e2e.add_argument(
        "--workers",
        type=_numbers(int),
        default=[1],
        help="worker processes, e.g. 1,2: the first count also gets the latency loads",
    )
    e2e.add_argument("--loads", type=_numbers(float), default=[100.0, 500.0, 1000.0], help="offered events/s")
    e2e.add_argument("--load-seconds", type=positive(float), default=10.0, help="seconds of publishing per load")
    e2e.add_argument("--no-max", action="store_true", help="skip the search for the highest sustained load")
    e2e.add_argument("--naive-events", type=positive(int), default=1000, help="events for the naive pipeline")
    e2e.add_argument(
        "--prefill",
        type=positive(int, allow_zero=True),
        default=0,
        metavar="N",
        help="stream N unmeasured events of the same users before each throughput run (steady-state histories)",
    )
    e2e.add_argument("--no-components", action="store_true", help="skip the Triton and Feast component figures")
    e2e.add_argument(
        "--profile",
        action="store_true",
        help="py-spy the workers and Triton's model during throughput and every load, the search's too (needs py-spy; "
        "files beside JSON; py-spy takes CPU from the stack, so latencies are then not comparable)",
    )
    _common(e2e)
    e2e.set_defaults(func=run_e2e)

    comp = bench_sub.add_parser("components", help="Triton rows/s at batch 1 and 64; Feast writer vs push, reads")
    comp.add_argument("--json", type=output_file, default=Path("artifacts/bench/components.json"))
    comp.add_argument("--triton-seconds", type=positive(float), default=5.0)
    comp.add_argument("--feast-rows", type=_feast_rows, default=5000, help="rows a write path writes (>= 500)")
    _common(comp)
    comp.set_defaults(func=run_components)

    proc = bench_sub.add_parser(
        "processor", help="CPU per click of the stream's own code (no broker, store or model: no stack needed)"
    )
    proc.add_argument("--events", type=positive(int), default=30000, help="events measured, after as many to warm up")
    proc.add_argument("--batch", type=positive(int), default=128, help="clicks a micro-batch")
    _file_option(proc)
    proc.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    proc.set_defaults(func=run_processor)

    exp = bench_sub.add_parser(
        "expiry", help="how long an idle-user expiry round holds a worker's loop, by table size (no stack needed)"
    )
    exp.add_argument("--users", type=positive(int), default=100_000, help="users in the table store")
    exp.add_argument("--events", type=positive(int), default=64, help="events in each user's history")
    exp.add_argument("--slice", type=positive(int), default=None, help="users a round reads (default: settings)")
    exp.add_argument("--json", type=output_file, default=None, help="also write the figures here")
    exp.set_defaults(func=run_expiry)


def _file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", type=Path, default=None, help=f"events CSV ({DEFAULT_DATA_HELP})")
    columns_option(parser)


def _common(parser: argparse.ArgumentParser) -> None:
    _file_option(parser)
    parser.add_argument(
        "--online-store",
        choices=["sqlite", "redis"],
        help="Feast online store: the pipeline's in e2e (default: settings), the only one measured in components",
    )
    parser.add_argument("--model", type=checked(model_name), help="Triton model name (default: settings)")


def _settings(args: argparse.Namespace):
    from deploy.stack.stack import not_healthy
    from streams.settings import get_settings

    settings = get_settings()
    down = not_healthy(settings, HEALTH_WAIT_S)
    if down:
        raise CliError(f"{', '.join(down)} not healthy: start the stack with `clickcast stack up`")
    settings = settings.updated(
        feast={"online_store": args.online_store} if args.online_store else {},
        triton={"model_name": args.model} if args.model else {},
    )
    _require_model(settings)
    _benchmarks_importable()
    return settings


def _benchmarks_importable() -> None:
    """The benchmark code lives with the tests, which are not installed: import it from the checkout."""
    if str(PROJECT_ROOT) not in sys.path:
        sys.path.insert(0, str(PROJECT_ROOT))


def _require_model(settings) -> None:
    """Triton serves the model: else the workers would wait for it through every phase, answering nothing."""
    import tritonclient.http as httpclient

    name = settings.triton.model_name
    client = httpclient.InferenceServerClient(settings.triton.http_url)
    try:
        ready = client.is_model_ready(name)
    except Exception as exc:  # connection refused, timeout: the health check passed, so say what failed
        raise CliError(f"cannot ask Triton at {settings.triton.http_url} about model {name}: {exc}") from None
    finally:
        client.close()
    if not ready:
        raise CliError(f"Triton does not serve a model named {name} (see `clickcast export` and --model)")


def _workload(path: Path | None, columns: str | None, limit: int | None = None):
    """The benchmark's events, read once before anything runs: a missing file, a folder, a bad mapping or wrong
    columns are one line."""
    from schemas.csv_source import READ_ERRORS, ColumnMapping
    from streams.commands import SAMPLE_DATA, default_data

    _benchmarks_importable()
    from tests.benchmarks.workload import Workload

    data = path or default_data()
    try:
        workload = Workload(data, ColumnMapping.parse(columns), limit=limit)
    except READ_ERRORS as exc:
        raise CliError(str(exc)) from None
    if data == SAMPLE_DATA and path is None:  # no full file beside the checkout: say so, the figures are of the sample
        print(
            f"benchmark data: the sample ({SAMPLE_DATA.name}: no full file at ../shared/data); --file F for another",
            file=sys.stderr,
        )
    return workload


def _progress(began: float):
    def say(line: str) -> None:
        print(f"[{time.monotonic() - began:7.1f}s] {line}", file=sys.stderr, flush=True)

    return say


def _write(path: Path, result: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result, indent=2) + "\n")


def run_e2e(args: argparse.Namespace) -> int:
    workload = _workload(args.file, args.columns)  # a file or mapping that does not read fails before the stack checks
    settings = _settings(args)
    from tests.benchmarks.e2e import E2EOptions
    from tests.benchmarks.e2e import run_e2e as bench
    from tests.benchmarks.profile import py_spy
    from tests.benchmarks.report import markdown_table, plot_latency, workers_label

    options = E2EOptions(
        data=workload.path,
        events=args.events,
        workers=args.workers,
        loads=args.loads,
        load_seconds=args.load_seconds,
        find_max=not args.no_max,
        naive_events=args.naive_events,
        prefill_events=args.prefill,
        with_components=not args.no_components,
        profile_dir=args.json.parent / f"{args.json.stem}-profile" if args.profile else None,
    )
    if args.profile and py_spy() is None:
        raise CliError("--profile needs py-spy: pip install py-spy")
    result = bench(settings, options, _progress(time.monotonic()), workload)
    _write(args.json, result)
    png, table = args.json.with_suffix(".png"), args.json.with_suffix(".md")
    plot_latency(result, png)
    table.write_text(markdown_table(result))
    print(json.dumps({k: result[k] for k in ("pipeline_eps", "naive_eps", "kafka_passthrough_eps")}))
    for name, target in result["targets"].items():
        verdict = {True: "met", False: "NOT met", None: "not measured"}[target["met"]]
        label = f"{name} ({workers_label(target['workers'])})" if target.get("workers") else name
        print(f"{label:38s} {target['value']!s:>10}  target {target['target']:>8}  {verdict}")
    print(f"wrote {args.json}, {png} and {table} (the README table)")
    return 0


def run_processor(args: argparse.Namespace) -> int:
    from streams.commands import tune_gc
    from streams.settings import get_settings

    _benchmarks_importable()
    from tests.benchmarks.replay import replay

    settings = get_settings().stream
    workload = _workload(args.file, args.columns)
    tune_gc(settings.gc_threshold)  # as the worker does
    result = replay(workload, args.events, args.batch, settings, _progress(time.monotonic()))
    if args.json:
        _write(args.json, result)
    print(json.dumps(result))
    return 0


def run_expiry(args: argparse.Namespace) -> int:
    from streams.settings import get_settings

    _benchmarks_importable()
    from tests.benchmarks.expiry import run

    slice_users = args.slice or get_settings().stream.expiry_slice_users
    result = run(args.users, args.events, slice_users, _progress(time.monotonic()))
    if args.json:
        _write(args.json, result)
    print(json.dumps(result))
    return 0


def run_components(args: argparse.Namespace) -> int:
    workload = _workload(args.file, args.columns)  # all of it: the longest histories come late in a file
    settings = _settings(args)
    from tests.benchmarks import components
    from tests.benchmarks.report import machine

    say = _progress(time.monotonic())
    say("triton")
    result = {
        "machine": machine(),
        "model": settings.triton.model_name,
        "triton": components.triton_rows_per_s(settings, workload.events, seconds=args.triton_seconds),
    }
    stores = (args.online_store,) if args.online_store else components.FEAST_STORES
    say(f"feast ({', '.join(stores)})")
    result["feast"] = components.feast_figures(args.feast_rows, stores)
    _write(args.json, result)
    print(json.dumps(result, indent=2))
    return 0
