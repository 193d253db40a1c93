"""`clickcast stack up | down | status`: the local Kafka, Redis and Triton processes."""

from __future__ import annotations

import argparse
import json


def register(sub: argparse._SubParsersAction) -> None:
    stack = sub.add_parser("stack", help="run the local stack (Kafka, Redis, Triton) under the run dir")
    actions = stack.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("up", help="start every service (idempotent) and create the topics").set_defaults(func=_up)
    actions.add_parser("prepare", help="fetch what `up` needs (Kafka jars, Triton stub env)").set_defaults(
        func=_prepare
    )
    actions.add_parser("down", help="stop every service; no process is left").set_defaults(func=_down)
    status = actions.add_parser("status", help="one line per service; exit 1 if any is not healthy")
    status.add_argument("--json", action="store_true", help="print a JSON list instead")
    status.set_defaults(func=_status)


def _up(args: argparse.Namespace) -> int:
    from deploy.stack.stack import up
    from deploy.stack.triton import ModelMissingError
    from streams.cli import CliError
    from streams.settings import get_settings

    try:
        up(get_settings())
    except (ModelMissingError, RuntimeError, FileNotFoundError) as exc:  # ServiceError is a RuntimeError
        raise CliError.with_details(str(exc)) from exc
    return 0


def _prepare(args: argparse.Namespace) -> int:
    from deploy.stack.stack import prepare
    from streams.cli import CliError
    from streams.settings import get_settings

    try:
        prepare(get_settings())
    except (FileNotFoundError, RuntimeError) as exc:
        raise CliError.with_details(str(exc)) from exc
    return 0


def _down(args: argparse.Namespace) -> int:
    from deploy.stack.stack import down
    from streams.settings import get_settings

    down(get_settings())
    return 0


def _status(args: argparse.Namespace) -> int:
    from deploy.stack.stack import status
    from streams.settings import get_settings

    statuses = status(get_settings())
    if args.json:
        print(json.dumps([s.as_dict() for s in statuses], indent=2))
    else:
        for s in statuses:
            print(s.line())
    return 0 if all(s.state == "healthy" for s in statuses) else 1
