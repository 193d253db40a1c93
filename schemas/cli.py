"""`clickcast schemas export`: write the JSON Schema files."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    schemas = sub.add_parser("schemas", help="event schemas")
    actions = schemas.add_subparsers(dest="action", required=True, metavar="ACTION")
    export = actions.add_parser("export", help="write JSON Schema files for every event type")
    export.add_argument("--out", type=Path, default=None, help="directory (default: schemas/json in the package)")
    export.set_defaults(func=run_export)


def run_export(args: argparse.Namespace) -> int:
    from schemas.json_schema import SCHEMA_DIR, export
    from streams.cli import CliError

    try:
        paths = export(args.out or SCHEMA_DIR)
    except OSError as exc:  # a file in the way, no permission
        raise CliError(f"cannot write the schemas: {exc}") from None
    for path in paths:
        print(path)
    return 0
