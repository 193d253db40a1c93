"""Pydantic v2 models of the events on `clicks`, `predictions` and `clicks.dlq`.

Compact JSON on the wire (`to_wire` / `from_wire`); JSON Schema files are exported by
`clickcast schemas export` so producers in any language can validate.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, Literal

import orjson
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    field_validator,
)

SCHEMA_VERSION = 1
MAX_PAYLOAD_BYTES = 16 * 1024
# Clocks drift and producers batch: a little future is tolerated, a lot is a bug upstream.
MAX_FUTURE_SKEW = timedelta(minutes=5)

# Printable ASCII without spaces: ids travel space-separated to Triton and as Kafka keys.
ID_CHARS = r"\x21-\x7e"
ID_PATTERN = f"[{ID_CHARS}]+"
MAX_ID_LENGTH = 128
DATE_TIME_START = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")
MAX_CATEGORY_LENGTH = 128
Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID_LENGTH, pattern=f"^{ID_PATTERN}$")]


def _finite(value: float) -> float:
    if not math.isfinite(value):
        raise ValueError("must be a finite number")
    return value


Latitude = Annotated[float, Field(ge=-90.0, le=90.0), AfterValidator(_finite)]
Longitude = Annotated[float, Field(ge=-180.0, le=180.0), AfterValidator(_finite)]


class _Wire(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_wire(self) -> bytes:
        return self.model_dump_json(exclude_none=True).encode()

    @classmethod
    def from_wire(cls, payload: bytes | str):
        if len(payload) > MAX_PAYLOAD_BYTES:
            raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD_BYTES}")
        return cls.model_validate_json(payload)


class ClickEvent(_Wire):
    """One user interaction: a click or a check-in, at a time and place."""

    # Strict: no coercion from other JSON types (`true` or "-74" as a coordinate, a number as event_time, whose unit
    # pydantic would guess), which the published schema does not allow either.
    model_config = ConfigDict(strict=True)

    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Identifier
    user_id: Identifier
    item_id: Identifier
    # Not strict: a string, once a validator has read it, counts as Python input, where strict takes datetimes only.
    event_time: Annotated[AwareDatetime, Field(strict=False)]
    latitude: Latitude
    longitude: Longitude
    event_type: Annotated[str, Field(max_length=32)] | None = None
    category: Annotated[str, Field(max_length=MAX_CATEGORY_LENGTH)] | None = None
    text: Annotated[str, Field(max_length=1024)] | None = None

    @field_validator("event_time", mode="before")
    @classmethod
    def _date_time_text(cls, value: Any) -> Any:
        # Lax parsing would read a number, or "1333476000", as unix seconds or milliseconds, guessing which.
        if isinstance(value, datetime) or (isinstance(value, str) and DATE_TIME_START.match(value)):
            return value
        raise ValueError("event_time must be an RFC 3339 date-time, e.g. 2012-04-03T18:00:00Z")

    @field_validator("event_time")
    @classmethod
    def _not_far_in_future(cls, value: datetime) -> datetime:
        try:
            value = value.astimezone(UTC)
        except OverflowError:  # e.g. 9999-12-31T23:00-05:00: pydantic passes only ValueError on as an error
            raise ValueError("event_time out of range") from None
        if value > datetime.now(UTC) + MAX_FUTURE_SKEW:
            raise ValueError(f"event_time {value.isoformat()} is in the future")
        if value.year < 1970:
            raise ValueError("event_time before 1970")
        return value

    @property
    def timestamp(self) -> float:
        """Event time as unix seconds, the unit of all feature math."""
        return self.event_time.timestamp()


class ScoredItem(_Wire):
    item_id: str
    score: float


class StageLatency(_Wire):
    """Milliseconds spent per stage, from event time on the broker to the prediction produced."""

    kafka_in_ms: float
    features_ms: float
    feast_write_ms: float
    triton_ms: float
    kafka_out_ms: float | None = None  # None from the stream: only the answer's reader knows it (benchmarks fill it)
    total_ms: float


class PredictionEvent(_Wire):
    schema_version: Literal[1] = SCHEMA_VERSION
    event_id: Identifier
    user_id: Identifier
    items: list[ScoredItem]
    model_name: str
    model_version: str
    features: dict[str, float | int | str]
    event_time: AwareDatetime
    published_at: AwareDatetime  # when the click reached the broker: end-to-end latency starts here
    received_at: AwareDatetime
    predicted_at: AwareDatetime
    latency: StageLatency
    explanation: list[dict[str, Any]] | None = None


PREDICTION_FIELDS = tuple(PredictionEvent.model_fields)
_REQUIRED_PREDICTION_FIELDS = frozenset(n for n, f in PredictionEvent.model_fields.items() if f.is_required())
_KNOWN_PREDICTION_FIELDS = frozenset(PREDICTION_FIELDS)


def prediction_wire(fields: dict[str, Any]) -> bytes:
    """A PredictionEvent's wire bytes, encoded by orjson: ~2 µs against ~18 through `model_validate` and `to_wire`,
    and the stream answers every click with one. `fields` must hold values that validation accepts as they are
    (identifiers of a valid click, str model name and version, float scores, finite latencies, aware UTC datetimes,
    nested objects as dicts in their models' field order): the bytes are then those of
    `PredictionEvent.model_validate(fields).to_wire()` (tested). None values are left out at the top level and in
    `latency`, as `to_wire` leaves them out. Missing or unknown fields and non-finite features are refused."""
    names = fields.keys()
    if not _REQUIRED_PREDICTION_FIELDS <= names <= _KNOWN_PREDICTION_FIELDS:
        raise ValueError(f"prediction fields {sorted(names)} are not those of a PredictionEvent")
    if not all(math.isfinite(v) for v in fields["features"].values() if type(v) is float):
        raise ValueError(f"non-finite feature in {fields['features']}")
    event = {"schema_version": SCHEMA_VERSION}
    for name in PREDICTION_FIELDS[1:]:
        value = fields.get(name)
        if value is not None:
            event[name] = value
    event["latency"] = {k: v for k, v in event["latency"].items() if v is not None}
    return orjson.dumps(event, option=orjson.OPT_UTC_Z)


class DeadLetter(_Wire):
    schema_version: Literal[1] = SCHEMA_VERSION
    payload: str  # the first MAX_PAYLOAD_BYTES bytes of the message: an oversized one must still fit a message
    payload_encoding: Literal["utf-8", "base64"] = "utf-8"
    payload_bytes: int | None = None  # the message's full size, when `payload` holds only its start
    error: str
    source_topic: str
    source_partition: int
    source_offset: int
    failed_at: AwareDatetime = Field(default_factory=lambda: datetime.now(UTC))

    @classmethod
    def for_payload(cls, raw: bytes | None, error: str, topic: str, partition: int, offset: int) -> DeadLetter:
        import base64

        raw = raw or b""
        kept = raw[:MAX_PAYLOAD_BYTES]
        try:
            text, encoding = kept.decode("utf-8"), "utf-8"
        except UnicodeDecodeError:  # not UTF-8, or cut inside a character
            text, encoding = base64.b64encode(kept).decode(), "base64"
        return cls(
            payload=text,
            payload_encoding=encoding,
            payload_bytes=len(raw) if len(kept) < len(raw) else None,
            error=error[:2000],
            source_topic=topic,
            source_partition=partition,
            source_offset=offset,
        )
