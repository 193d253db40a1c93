"""`clickcast train | export | evaluate`: train and score everything, publish a model to Triton, re-score a model."""

from __future__ import annotations

import argparse
import contextlib
import json
import pickle
import sys
from datetime import UTC, datetime
from pathlib import Path

from streams.cli import checked, columns_option, positive
from streams.commands import DEFAULT_DATA_HELP
from streams.settings import model_name
from trainer.serving.triton_config import KEEP_VERSIONS

REPO_ROOT = Path(__file__).resolve().parents[1]
MODEL_SUBDIR = "model"  # where `clickcast train` saves the model inside --out


def register(sub: argparse._SubParsersAction) -> None:
    train = sub.add_parser("train", help="train the model and every baseline, write DIR/metrics.json and plots")
    _data_args(train)
    # Under artifacts/, beside the Makefile's models: `make clean` deletes .run/, not what was trained.
    train.add_argument("--out", type=Path, default=REPO_ROOT / "artifacts" / "train", help="output folder")
    train.add_argument("--quick", action="store_true", help="quick config, no SASRec or ablations (tests, demo)")
    train.set_defaults(func=train_command)

    export = sub.add_parser("export", help="write a trained model as a new version into the Triton model repository")
    export.add_argument("--from", dest="source", type=Path, required=True, help="`clickcast train --out` folder")
    export.add_argument(
        "--repository", type=Path, help="Triton model repository (default: the settings', CLICKCAST_MODEL_REPOSITORY)"
    )
    export.add_argument(
        "--name",
        type=checked(model_name),
        help="Triton model name (default: the settings', CLICKCAST_TRITON__MODEL_NAME)",
    )
    export.add_argument(
        "--wait",
        type=positive(float, allow_zero=True),
        default=0.0,
        metavar="SECONDS",
        help="then wait up to SECONDS until the running Triton (settings) serves the new version",
    )
    export.add_argument(
        "--keep",
        type=kept_versions,
        default=KEEP_VERSIONS,
        metavar="N",
        help=f"keep the newest N versions (at least 2), the new one included, and delete older ones "
        f"(default {KEEP_VERSIONS})",
    )
    export.set_defaults(func=export_command)

    evaluate = sub.add_parser("evaluate", help="score a trained model on a data file's test split")
    evaluate.add_argument("--model", type=Path, required=True, help="model folder (or a `clickcast train` folder)")
    _data_args(evaluate)
    evaluate.add_argument("--split", choices=("val", "test"), default="test", help="the split to score (default test)")
    evaluate.set_defaults(func=evaluate_command)


def kept_versions(text: str) -> int:
    """An argparse type: how many versions an export keeps, at least 2 (the new one and the one served before it)."""
    keep = positive(int)(text)
    if keep < 2:
        raise argparse.ArgumentTypeError(
            f"must be at least 2 (the new version and the one served before it), got {text}"
        )
    return keep


def _data_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--data",
        type=Path,
        default=None,
        help=f"check-in/click CSV ({DEFAULT_DATA_HELP})",
    )
    columns_option(parser)
    parser.add_argument("--max-events", type=positive(int), default=None, help="use only the first N events in time")


def _data_inputs(args: argparse.Namespace):
    from schemas.csv_source import ColumnMapping
    from streams.cli import CliError
    from streams.commands import default_data

    data = args.data or default_data()
    if not data.exists():  # a folder or an unreadable file: the reader says which
        raise CliError(f"no data file {data} (pass --data)")
    if args.max_events is not None and args.max_events < 10:
        raise CliError("--max-events must be at least 10")
    try:
        mapping = ColumnMapping.parse(args.columns)
    except ValueError as exc:
        raise CliError(str(exc)) from None
    return data, mapping


def _load(data: Path, mapping, max_events: int | None, vocab=None):
    """The dataset, with a missing column or an empty file as a one-line error."""
    from schemas.csv_source import READ_ERRORS
    from streams.cli import CliError
    from trainer.data import load_dataset

    try:
        return load_dataset(data, mapping, max_events=max_events, vocab=vocab)
    except READ_ERRORS as exc:
        message = str(exc)
        if str(data) not in message:  # named by the path given, once
            message = (
                f"{data}{message[len(data.name) :]}" if message.startswith(f"{data.name} ") else f"{data}: {message}"
            )
        raise CliError(message) from None


# What loading a damaged model folder raises: missing files, bad JSON, a vocabulary without a key, a value of the
# wrong type, weights torch cannot unpickle or that do not fit the configured network.
MODEL_ERRORS = (OSError, ValueError, KeyError, TypeError, RuntimeError, pickle.UnpicklingError)


def model_dir(path: Path) -> Path:
    """A model folder, given it or a `clickcast train` output folder that holds one."""
    from streams.cli import CliError

    for candidate in (path / MODEL_SUBDIR, path):
        if (candidate / "config.json").is_file():
            return candidate
    raise CliError(f"no trained model in {path} (expected {path / MODEL_SUBDIR}/config.json; run `clickcast train`)")


def train_command(args: argparse.Namespace) -> int:
    from trainer.allocator import use_huge_pages

    use_huge_pages()  # before anything imports torch
    from schemas.csv_source import READ_ERRORS, read_events_frame
    from streams.cli import CliError
    from trainer.data import TooLittleData
    from trainer.pipeline import run_training

    data, mapping = _data_inputs(args)
    try:
        frame = read_events_frame(data, mapping, limit=args.max_events)
    except READ_ERRORS as exc:
        raise CliError(str(exc)) from None
    if frame.empty:  # what from_frame would refuse; checked here so the pipeline splits the data only once
        raise CliError(f"no events in {data}")
    if args.out.exists() and not args.out.is_dir():
        raise CliError(f"--out {args.out} is a file, not a folder")
    # The highest folder this run makes, if any: removed again should the data be refused before anything is written.
    made = None if args.out.exists() else next(p for p in (args.out, *args.out.parents) if p.parent.exists())
    try:
        args.out.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file above it, no permission
        raise CliError(f"cannot use --out {args.out}: {exc.strerror}") from None
    try:
        run_training(data, args.out, quick=args.quick, mapping=mapping, max_events=args.max_events, frame=frame)
    except TooLittleData as exc:
        if made is not None:
            for folder in (args.out, *args.out.parents):
                with contextlib.suppress(OSError):
                    folder.rmdir()
                if folder == made:
                    break
        raise CliError(f"{data}: {exc}") from None
    return 0


def export_command(args: argparse.Namespace) -> int:
    source = model_dir(args.source)
    from streams.cli import CliError
    from streams.settings import get_settings
    from trainer.serving.export import export_model

    # By default where the stack's Triton reads (`stack up`, the Makefile and the workers go by the settings too).
    settings = get_settings()
    repository = args.repository or settings.model_repository
    name = args.name or settings.triton.model_name
    from deploy.stack.triton import ready_versions

    # The version the stack's Triton serves stays, however many newer ones failed to load since (another repository
    # is not the one the stack's Triton reads).
    stack_repository = Path(repository).resolve() == Path(settings.model_repository).resolve()
    serving = ready_versions(settings.triton.http_url, name) if stack_repository else set()
    try:
        version = export_model(source, repository, model_name=name, keep=args.keep, serving=serving)
    except MODEL_ERRORS as exc:  # an incomplete or corrupt model folder, a file as the repository
        raise CliError(str(exc)) from None
    print(f"exported {source} as {repository / name / str(version)} (version {version})")
    if args.wait > 0:
        from deploy.stack.triton import wait_served

        waited = wait_served(settings.triton.http_url, name, version, args.wait)
        if waited is None:
            raise CliError(f"Triton did not serve {name} version {version} within {args.wait:.0f} s (is the stack up?)")
        print(f"triton serves {name} version {version} (after {waited:.0f} s)")
    return 0


def _after_training(split, which: str, ts, trained_until: float | None):
    """The split with the scored part (`which`) limited to events after the newest event the model was trained or
    tuned on: another file, --max-events or --split val would otherwise score events the model learned from or
    chose its settings on. Events at that very second stay (the re-split of the training file puts such events in
    its test part too)."""
    import dataclasses

    from streams.cli import CliError

    if trained_until is None or which == "train":
        return split
    mask = getattr(split, which)
    kept = mask & (ts >= trained_until)
    if not kept.any():
        raise CliError(
            f"all {int(mask.sum())} {which} events are older than the newest event the model was trained or tuned on "
            f"({datetime.fromtimestamp(trained_until, UTC):%Y-%m-%d %H:%M} UTC): evaluate it on newer events"
        )
    if left := int(mask.sum() - kept.sum()):
        print(
            f"left out {left} of {int(mask.sum())} {which} events from the model's training and tuning period",
            file=sys.stderr,
        )
    return dataclasses.replace(split, **{which: kept})


def evaluate_command(args: argparse.Namespace) -> int:
    from trainer.allocator import use_huge_pages

    use_huge_pages()  # before anything imports torch
    source = model_dir(args.model)
    data, mapping = _data_inputs(args)
    from streams.cli import CliError
    from trainer.data import ItemVocab, data_stats
    from trainer.evaluate import rank_events
    from trainer.model import ClickcastRecommender

    try:
        model = ClickcastRecommender.load(source)
    except MODEL_ERRORS as exc:
        raise CliError(f"cannot load the model in {source}: {exc}") from None
    saved = model.model
    vocab = ItemVocab.from_ids(saved.item_ids, saved.item_lat, saved.item_lon)
    ck, split = _load(data, mapping, args.max_events, vocab)
    split = _after_training(split, args.split, ck.ts, saved.trained_until)
    result = rank_events(model, ck, split, args.split).metrics()
    stats = data_stats(ck, split)
    print(json.dumps({"model": str(source), "data": str(data), "split": args.split, "metrics": result, "stats": stats}))
    return 0
