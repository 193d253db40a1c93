"""Reading check-in / click CSV files into canonical event columns.

One reader for the producer and the trainer, so both see the same events in the same order.
Defaults fit `foursquare_nyc/checkins.csv.gz`; other files map their own column names.
"""

from __future__ import annotations

import logging
import re
import time
import zlib
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, ValidationError

from schemas.events import ID_CHARS, ID_PATTERN, MAX_CATEGORY_LENGTH, MAX_FUTURE_SKEW, MAX_ID_LENGTH, ClickEvent

log = logging.getLogger(__name__)

# What reading a CSV file can raise besides a bad mapping: missing or unreadable (OSError), not a CSV or a
# corrupt middle (ValueError), a truncated .gz (EOFError), a corrupt deflate stream (zlib.error).
READ_ERRORS = (OSError, ValueError, EOFError, zlib.error)

UNIT_PER_SECOND = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}
# Unix times all before 1990 are most likely in a unit finer than the one declared (seconds read as milliseconds).
PLAUSIBLE_SINCE = 631_152_000.0

CANONICAL_COLUMNS = ("event_id", "user_id", "item_id", "ts", "latitude", "longitude", "category")


class ColumnMapping(BaseModel):
    """Which CSV column holds each event field. `event_id=None` derives ids from the file row number."""

    model_config = ConfigDict(frozen=True)

    user_id: str = "user_id"
    item_id: str = "poi_id"
    time: str = "utc_time_approx"
    latitude: str = "latitude"
    longitude: str = "longitude"
    event_id: str | None = None
    category: str | None = "category_name"
    # A number column (unix time) instead of ISO-8601 text; its unit.
    time_unit: Literal["s", "ms", "us", "ns"] | None = None

    @classmethod
    def parse(cls, spec: str | None) -> ColumnMapping:
        """`field=column,field=column` as given on the command line."""
        if not spec:
            return cls()
        pairs = {}
        for part in spec.split(","):
            key, sep, value = part.partition("=")
            if not sep or not key.strip():
                raise ValueError(f"column mapping '{part}' is not field=column")
            if key.strip() in pairs:
                raise ValueError(f"column mapping names {key.strip()} twice")
            pairs[key.strip()] = value.strip() or None
        unknown = set(pairs) - set(cls.model_fields)
        if unknown:
            raise ValueError(f"unknown field(s) in column mapping: {', '.join(sorted(unknown))}")
        try:
            return cls(**pairs)
        except ValidationError as exc:  # e.g. `user_id=`: only optional fields may be mapped to nothing
            first = exc.errors()[0]
            raise ValueError(f"column mapping {first['loc'][0]}: {first['msg']}") from None


def read_events_frame(path: str | Path, mapping: ColumnMapping | None = None, limit: int | None = None) -> pd.DataFrame:
    """Rows as canonical columns, sorted by event time (stable, so file order breaks ties).

    Rows with an unreadable time or coordinates are left out, counted in a warning; a time or coordinate
    column that reads as nothing at all is a ValueError (a wrong mapping, not bad rows).
    """
    mapping = mapping or ColumnMapping()
    path = Path(path)
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder, not a data file")
    if not path.is_file():
        raise FileNotFoundError(f"no such file: {path}")
    wanted = [mapping.user_id, mapping.item_id, mapping.time, mapping.latitude, mapping.longitude]
    wanted += [c for c in (mapping.event_id, mapping.category) if c]
    header = _read_csv(path, nrows=0).columns
    missing = [c for c in wanted if c not in header]
    if missing:
        raise ValueError(f"{path.name} has no column(s) {', '.join(missing)}; map them with --columns")
    # Text columns stay text: as numbers, ids "007" and "7" would both read 7.0 (and the stream would drop one of
    # two events with equal ids as a duplicate), and a category "1.50" would read 1.5.
    text_columns = [mapping.user_id, mapping.item_id, mapping.event_id, mapping.category]
    raw = _read_csv(path, usecols=wanted, dtype={c: str for c in text_columns if c}, keep_default_na=False)
    if mapping.time_unit:
        # Plain numbers, not datetimes: a value no datetime holds (a millisecond time in a seconds column) is a bad
        # row, which the range checks below leave out, rather than an error for the whole file.
        ts = pd.to_numeric(raw[mapping.time], errors="coerce") / UNIT_PER_SECOND[mapping.time_unit]
    else:
        ts = _iso_seconds(raw[mapping.time])
    frame = pd.DataFrame(
        {
            "event_id": raw[mapping.event_id].astype(str)
            if mapping.event_id
            # The file's name, made an id: a space in it would make every generated id one the schema refuses.
            else re.sub(f"[^{ID_CHARS}]", "_", path.name.split(".")[0])[:100]
            + ":"
            + pd.Series(np.arange(len(raw)), dtype=str),
            "user_id": raw[mapping.user_id].astype(str),
            "item_id": raw[mapping.item_id].astype(str),
            "ts": ts,
            "latitude": pd.to_numeric(raw[mapping.latitude], errors="coerce"),
            "longitude": pd.to_numeric(raw[mapping.longitude], errors="coerce"),
            "category": raw[mapping.category].astype(str) if mapping.category else "",
        }
    )
    # Coordinates the event schema refuses (out of range, infinite) are as unusable as unreadable ones: the stream
    # dead-letters such events, so offline histories must not keep them either.
    off_map = ~frame["latitude"].between(-90, 90) | ~frame["longitude"].between(-180, 180)
    frame.loc[off_map, ["latitude", "longitude"]] = np.nan
    # Likewise what else the schema refuses (an id with a space, a time before 1970 or in the future, a long
    # category): the stream dead-letters such events, so it could never answer for them.
    ids = frame[["event_id", "user_id", "item_id"]]
    bad_id = ~(ids.apply(lambda c: c.str.fullmatch(ID_PATTERN)) & (ids.apply(lambda c: c.str.len()) <= MAX_ID_LENGTH))
    latest = time.time() + MAX_FUTURE_SKEW.total_seconds()
    refused = bad_id.any(axis=1) | (frame["ts"] < 0) | (frame["ts"] > latest)
    refused |= frame["category"].str.len() > MAX_CATEGORY_LENGTH
    _report_unreadable(path, mapping, raw, frame, refused)
    frame = frame[~refused].dropna(subset=["ts", "latitude", "longitude"])
    if mapping.time_unit and len(frame) and frame["ts"].max() < PLAUSIBLE_SINCE:
        log.warning(
            "%s: read as %s, every time in column %s is before 1990 (the newest: %s): is the unit right?",
            path.name,
            mapping.time_unit,
            mapping.time,
            datetime.fromtimestamp(frame["ts"].max(), UTC).isoformat(),
        )
    frame = frame.sort_values("ts", kind="stable").reset_index(drop=True)
    return frame.head(limit) if limit else frame


def _read_csv(path: Path, **options) -> pd.DataFrame:
    """pandas' read_csv, its errors naming the file (an empty file, a .gz that is not gzip, a corrupt middle)."""
    try:
        return pd.read_csv(path, **options)
    except READ_ERRORS as exc:
        raise ValueError(f"{path.name} does not read as CSV: {exc}") from None


def _iso_seconds(text: pd.Series) -> pd.Series:
    """ISO 8601 text as unix seconds (NaN where unreadable); a time without an offset is UTC. Times with and without
    an offset are parsed apart: pandas' ISO 8601 parser gives a time without one the offset of the row before it."""
    text = text.astype(str).str.strip()  # a space after the offset would hide it from the pattern
    aware = text.str.contains(r"\d[T ]\d.*(?:Z|[+-]\d\d(?::?\d\d)?)$")
    seconds = pd.Series(np.nan, index=text.index)
    for rows in (aware, ~aware):
        if rows.any():
            times = pd.to_datetime(text[rows], utc=True, errors="coerce", format="ISO8601")
            seconds[rows] = np.where(times.isna(), np.nan, times.astype("int64") / 1e9)
    return seconds


def _report_unreadable(
    path: Path, mapping: ColumnMapping, raw: pd.DataFrame, frame: pd.DataFrame, refused: pd.Series
) -> None:
    """A column that reads as nothing is a mapping error (one line); a few unreadable rows are a warning."""
    no_time = frame["ts"].isna()
    no_place = frame["latitude"].isna() | frame["longitude"].isna()
    if len(frame) and no_time.all():
        raise ValueError(
            f"{path.name}: no value of column {mapping.time} reads as a time (the first is "
            f"{str(raw[mapping.time].iloc[0])!r}); it takes ISO 8601 text, or numbers with --columns time_unit=s or ms"
        )
    if len(frame) and no_place.all():
        raise ValueError(
            f"{path.name}: no row has numeric {mapping.latitude} and {mapping.longitude} within ±90 and ±180 degrees"
        )
    no_place, refused = no_place & ~no_time, refused & ~no_time & ~no_place  # each row counted once
    if no_time.any() or no_place.any() or refused.any():
        log.warning(
            "%s: %d rows without a readable time, %d without valid coordinates and %d the event schema refuses "
            "otherwise (an id, a time before 1970 or in the future, a long category) are left out",
            path.name,
            int(no_time.sum()),
            int(no_place.sum()),
            int(refused.sum()),
        )


def iter_click_events(
    frame: pd.DataFrame, on_invalid: Callable[[str, str], None] | None = None
) -> Iterator[ClickEvent]:
    """Canonical rows as validated `ClickEvent`s. A row that violates the schema raises, or, with
    `on_invalid`, is reported as (event id, reason) and skipped: rows are in time order by then, and a generated
    event id names the row of the file."""
    for row in frame.itertuples(index=False):
        try:
            yield ClickEvent(
                event_id=row.event_id,
                user_id=row.user_id,
                item_id=row.item_id,
                event_time=datetime.fromtimestamp(row.ts, UTC),
                latitude=row.latitude,
                longitude=row.longitude,
                category=row.category or None,
            )
        except ValidationError as exc:
            if on_invalid is None:
                raise
            on_invalid(str(row.event_id), str(exc.errors()[0]["msg"]))
