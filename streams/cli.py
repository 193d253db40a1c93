"""`clickcast`: the one command that fronts everything a user runs.

Each package contributes its sub-commands through a `register(subparsers)` function; a sub-command
sets `func(args) -> int`. Imports of heavy modules happen inside the commands, so `--help` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import math
import sys
from collections.abc import Callable

# Packages whose `cli.register` adds sub-commands, in the order they appear in --help.
COMMAND_MODULES = ("deploy.cli", "streams.commands", "streams.bench_cli", "trainer.cli", "schemas.cli")


class CliError(Exception):
    """An expected failure with a message for the user, printed as one line (no traceback); `details`, when
    given, follow it indented (a failed service's log tail, Maven's own error)."""

    def __init__(self, message: str, details: str = "") -> None:
        super().__init__(message)
        self.details = details

    @classmethod
    def with_details(cls, text: str) -> CliError:
        """The first line of `text` as the message, the rest as details."""
        first, _, rest = text.partition("\n")
        return cls(first, rest.strip("\n"))


def positive(kind, allow_zero: bool = False):
    """An argparse type: one finite number of `kind`, above zero (or from zero)."""

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value):
            raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(f"must be {'zero or more' if allow_zero else 'positive'}, got {text}")
        return value

    return parse


def checked(check: Callable[[str], str]) -> Callable[[str], str]:
    """An argparse type from a check that returns its text or raises ValueError (a settings field's validator), so
    that an argument and the setting it overrides are held to one rule, in one message."""

    def parse(text: str) -> str:
        try:
            return check(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse


def columns_option(parser: argparse.ArgumentParser) -> None:
    """`--columns`, the CSV column mapping every command that reads a check-in/click file takes
    (schemas.csv_source.ColumnMapping.parse reads it)."""
    parser.add_argument(
        "--columns",
        default=None,
        help="field=column,... for a CSV whose columns are not the NYC file's (user_id, poi_id, utc_time_approx, "
        "latitude, longitude, category_name); fields: user_id, item_id, time, latitude, longitude, event_id, category, "
        "time_unit",
    )


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, not a usage dump
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="clickcast", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser, metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # a real import error inside the module must surface
                raise
            continue
        module.register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except CliError as exc:
        # One line even when the message wraps a library's own (torch's run to a dozen lines).
        print(f"clickcast {args.command}: {(str(exc).splitlines() or [''])[0]}", file=sys.stderr)
        for line in exc.details.splitlines():
            print(f"  {line}", file=sys.stderr)
        return 1
    except Exception as exc:
        message = _settings_error(exc)
        if message is None:
            raise
        print(f"clickcast {args.command}: {message}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _settings_error(exc: Exception) -> str | None:
    """One line for an invalid CLICKCAST_* environment variable, None for any other error."""
    from pydantic import ValidationError
    from pydantic_settings import SettingsError

    if isinstance(exc, SettingsError):
        return f"invalid setting: {exc}"
    if isinstance(exc, ValidationError) and exc.title == "Settings":
        first = exc.errors()[0]
        where = "__".join(str(part) for part in first["loc"]).upper()
        value = first.get("input")
        # A scalar is what the variable held; never echo a password.
        shown = f"={value!r}" if isinstance(value, str | int | float) and "PASSWORD" not in where else ""
        # A validator's own ValueError reads "Value error, <its message>": the message alone says it.
        return f"invalid setting CLICKCAST_{where}{shown}: {first['msg'].removeprefix('Value error, ')}"
    return None


if __name__ == "__main__":
    sys.exit(main())
