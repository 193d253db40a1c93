"""Stream sub-commands: `worker`, `produce`, `tail`, `demo`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from streams.cli import CliError, checked, columns_option, positive
from streams.settings import PROJECT_ROOT, topic_name

SHARED_DATA = PROJECT_ROOT.parent / "shared" / "data" / "foursquare_nyc" / "checkins.csv.gz"
SAMPLE_DATA = PROJECT_ROOT / "deploy" / "sample_data" / "foursquare_nyc_sample.csv.gz"


DEFAULT_DATA_HELP = "default: the full NYC file beside the checkout (../shared/data), else the sample in deploy/"


def default_data() -> Path:
    """The full public file where this checkout sits beside it, else the sample shipped in the repo."""
    return SHARED_DATA if SHARED_DATA.exists() else SAMPLE_DATA


def register(sub: argparse._SubParsersAction) -> None:
    worker = sub.add_parser("worker", help="run a stream worker (start more to scale out)")
    worker.add_argument("--store", choices=["rocksdb", "memory"], help="table store (default from settings)")
    worker.add_argument("--online-store", choices=["sqlite", "redis"], help="Feast online store")
    worker.add_argument("--explain", action="store_true", help="carry the events that weighed most in predictions")
    worker.add_argument("--loglevel", default="info", choices=["debug", "info", "warning", "error"])
    worker.set_defaults(func=run_worker)

    produce = sub.add_parser("produce", help="replay a check-in/click CSV to the clicks topic in event-time order")
    produce.add_argument("--file", type=Path, default=None, help=f"CSV (.gz ok); {DEFAULT_DATA_HELP}")
    columns_option(produce)
    pace = produce.add_mutually_exclusive_group()
    pace.add_argument("--speed", type=positive(float), help="times real time")
    pace.add_argument("--rate", type=positive(float), help="events per second")
    produce.add_argument("--limit", type=positive(int), help="stop after N events")
    produce.add_argument("--topic", type=checked(topic_name), help="topic (default: the clicks topic)")
    produce.set_defaults(func=run_produce)

    tail = sub.add_parser("tail", help="print events of an output topic as they arrive")
    tail.add_argument("topic", choices=["predictions", "dlq"], help="which stream")
    tail.add_argument("--json", action="store_true", help="one JSON object per line")
    tail.add_argument("--limit", type=positive(int), help="stop after N events")
    tail.add_argument("--from-beginning", action="store_true")
    tail.set_defaults(func=run_tail)

    demo = sub.add_parser("demo", help="stream sample data through the running stack and show predictions live")
    demo.add_argument("--file", type=Path, default=None, help=f"check-in CSV to stream; {DEFAULT_DATA_HELP}")
    demo.add_argument("--limit", type=positive(int), default=3000, help="events to stream (default 3000)")
    demo.add_argument("--rate", type=positive(float), default=200.0, help="events per second (default 200)")
    demo.add_argument("--workers", type=positive(int), default=1, help="stream workers to start (default 1)")
    demo.set_defaults(func=run_demo)


def run_worker(args: argparse.Namespace) -> int:
    import logging

    from faust import Worker

    from streams.app import claim_table_dir, create_app, reset_stale_tables, table_dir
    from streams.kafka_config import ensure_reachable
    from streams.settings import get_settings

    settings = get_settings()
    updates = {}
    if args.store:
        updates["store"] = f"{args.store}://"
    if args.explain:
        updates["explain"] = True
    store = {"online_store": args.online_store} if args.online_store else {}
    settings = settings.updated(stream=updates, feast=store)
    logging.basicConfig(level=args.loglevel.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        store_lock = claim_table_dir(settings)  # held until the process exits
        if store_lock is None:  # nothing on disk to reset, and workers on one machine share the directory unlocked
            ensure_reachable(settings.kafka)
            table_dir(settings).mkdir(parents=True, exist_ok=True)  # faust makes only its last level
        else:
            reset_stale_tables(settings)  # the worker's first word with the broker
    except OSError as exc:  # ConnectionError included: no broker answers
        raise CliError(str(exc)) from None
    app = create_app(settings)
    tune_gc(settings.stream.gc_threshold)
    Worker(app, loglevel=args.loglevel).execute_from_commandline()
    return 0


def tune_gc(threshold: int) -> None:
    import gc

    gc.collect()
    gc.freeze()  # modules, the app and its clients live as long as the process: stop rescanning them
    gc.set_threshold(threshold, *gc.get_threshold()[1:])


def _load_events(path: Path | None, columns: str | None, limit: int | None):
    from schemas.csv_source import READ_ERRORS, ColumnMapping, read_events_frame

    path = path or default_data()
    try:
        mapping = ColumnMapping.parse(columns)
        frame = read_events_frame(path, mapping, limit=limit)
    except READ_ERRORS as exc:
        raise CliError(str(exc)) from None
    if frame.empty:  # a header alone, or every row left out: nothing to send is a mistake, not a success
        raise CliError(f"no events in {path}")
    return frame


def _require_kafka(settings) -> None:
    from streams.kafka_config import ensure_reachable

    try:
        ensure_reachable(settings.kafka)
    except ConnectionError as exc:
        raise CliError(str(exc)) from None


def run_produce(args: argparse.Namespace) -> int:
    from confluent_kafka import KafkaError, KafkaException
    from tqdm import tqdm

    from schemas.csv_source import iter_click_events
    from streams.producer import ClickProducer, Pacer, replay
    from streams.settings import get_settings

    frame = _load_events(args.file, args.columns, args.limit)
    settings = get_settings()
    _require_kafka(settings)
    refused: list[tuple[str, str]] = []
    with tqdm(total=len(frame), unit="ev", desc="produce", file=sys.stderr) as bar:
        producer = ClickProducer(settings, topic=args.topic)
        events = iter_click_events(frame, on_invalid=lambda event_id, reason: refused.append((event_id, reason)))
        try:
            summary = replay(events, producer, Pacer(speed=args.speed, rate=args.rate), on_sent=lambda n: bar.update(1))
        except KafkaException as exc:  # undelivered events, a topic the broker refuses
            error = exc.args[0]  # a KafkaError from the client, or ClickProducer.flush's own message
            raise CliError(
                f"producing to {producer.topic}: {error.str() if isinstance(error, KafkaError) else error}"
            ) from None
        except KeyboardInterrupt:
            bar.close()
            print(f"interrupted: {producer.delivered} events delivered to {producer.topic}", file=sys.stderr)
            raise
    print(
        f"produced {summary.events} events in {summary.seconds:.1f}s ({summary.rate:.0f} events/s) to {producer.topic}"
    )
    warn_refused(refused)
    return 0


def warn_refused(refused: list[tuple[str, str]]) -> None:
    """One line for the rows the event schema refused (skipped, not sent), naming the first."""
    if refused:
        event_id, reason = refused[0]
        print(
            f"skipped {len(refused)} rows the event schema refuses (first: event {event_id}: {reason})", file=sys.stderr
        )


def run_tail(args: argparse.Namespace) -> int:
    from streams.consumer import TopicReader
    from streams.render import message_line, render_dead_letter, render_prediction
    from streams.settings import get_settings

    settings = get_settings()
    _require_kafka(settings)
    topic = settings.topics.predictions if args.topic == "predictions" else settings.topics.dead_letters
    render = render_prediction if args.topic == "predictions" else render_dead_letter
    seen = 0
    with TopicReader(settings, topic, from_beginning=args.from_beginning) as reader:
        for msg in reader.messages():
            print(message_line(msg, render, args.json), flush=True)
            seen += 1
            if args.limit and seen >= args.limit:
                break
    return 0


def run_demo(args: argparse.Namespace) -> int:
    from deploy.stack.process import ServiceError
    from deploy.stack.stack import status
    from streams.demo import run
    from streams.kafka_config import ensure_reachable
    from streams.settings import get_settings

    settings = get_settings()
    down = [s.name for s in status(settings) if s.state != "healthy"]
    if down:
        raise CliError(f"{', '.join(down)} not running: start the stack with `clickcast stack up` (or `make demo`)")
    clicks = ensure_reachable(settings.kafka).topics.get(settings.topics.clicks)
    # A topic not made yet (or without metadata) gets the configured count, as `stack up` makes it.
    partitions = len(clicks.partitions) if clicks is not None and clicks.partitions else settings.topics.partitions
    if args.workers > partitions:
        raise CliError(
            f"--workers {args.workers}: the {settings.topics.clicks} topic has {partitions} partitions, "
            "and a worker without one would wait for partitions forever"
        )
    frame = _load_events(args.file, None, args.limit)
    try:
        return run(frame, rate=args.rate, workers=args.workers)
    except ServiceError as exc:  # a worker that exited or never joined the group
        raise CliError.with_details(str(exc)) from None
