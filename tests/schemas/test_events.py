import base64
import json
import math
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from pydantic import ValidationError

from schemas.events import MAX_PAYLOAD_BYTES, ClickEvent, DeadLetter, PredictionEvent, prediction_wire
from schemas.json_schema import SCHEMA_DIR, render

GOOD = {
    "event_id": "e1",
    "user_id": "470",
    "item_id": "635",
    "event_time": "2012-04-03T18:00:00Z",
    "latitude": 40.71981,
    "longitude": -74.002581,
}


def wire(**changes) -> bytes:
    body = {**GOOD, **changes}
    return json.dumps({k: v for k, v in body.items() if v is not ...}).encode()


def test_round_trip_is_compact_and_lossless():
    event = ClickEvent.from_wire(wire(category="Bridge"))
    raw = event.to_wire()
    assert b" " not in raw.replace(b"Bridge", b"")
    assert ClickEvent.from_wire(raw) == event
    assert event.timestamp == datetime(2012, 4, 3, 18, tzinfo=UTC).timestamp()


@pytest.mark.parametrize("field", ["event_id", "user_id", "item_id", "event_time", "latitude", "longitude"])
def test_missing_fields_are_rejected(field):
    with pytest.raises(ValidationError, match=field):
        ClickEvent.from_wire(wire(**{field: ...}))


@pytest.mark.parametrize(
    ("field", "value"),
    [("latitude", 90.0001), ("latitude", -91), ("longitude", 180.5), ("longitude", -181)],
)
def test_coordinates_out_of_range(field, value):
    with pytest.raises(ValidationError, match=field):
        ClickEvent.from_wire(wire(**{field: value}))


def test_edges_of_the_globe_are_valid():
    event = ClickEvent.from_wire(wire(latitude=-90.0, longitude=180.0))
    assert (event.latitude, event.longitude) == (-90.0, 180.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("latitude", True),
        ("longitude", "-74"),
        ("event_time", 1333476000),
        ("event_time", "1333476000"),
        ("event_time", 1333476000000.0),
        ("event_time", "2012-04-03"),
        ("user_id", 470),
    ],
)
def test_values_of_another_json_type_are_refused_not_coerced(field, value):
    """The schema's types, not pydantic's guesses: a number as event_time would be read as seconds or milliseconds."""
    with pytest.raises(ValidationError, match=field):
        ClickEvent.from_wire(wire(**{field: value}))


@pytest.mark.parametrize(
    "text", ["2012-04-03T18:00:00Z", "2012-04-03T20:00:00+02:00", "2012-04-03t18:00:00z", "2012-04-03 18:00:00.000Z"]
)
def test_rfc_3339_date_times_are_read(text):
    assert ClickEvent.from_wire(wire(event_time=text)).event_time == datetime(2012, 4, 3, 18, tzinfo=UTC)


def test_whole_numbers_are_valid_coordinates():
    assert ClickEvent.from_wire(wire(latitude=40, longitude=-74)).longitude == -74.0


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_non_finite_numbers_are_rejected(text):
    raw = wire().replace(b"40.71981", text.encode())
    with pytest.raises(ValidationError):
        ClickEvent.from_wire(raw)
    with pytest.raises(ValidationError):
        ClickEvent(**{**GOOD, "latitude": float(text.lower().replace("infinity", "inf"))})


def test_timestamps_far_in_the_future_are_rejected_but_skew_is_tolerated():
    # Four minutes of clock skew pass; six are beyond the tolerated five.
    soon = (datetime.now(UTC) + timedelta(minutes=4)).isoformat()
    later = (datetime.now(UTC) + timedelta(minutes=6)).isoformat()
    ClickEvent.from_wire(wire(event_time=soon))
    with pytest.raises(ValidationError, match="future"):
        ClickEvent.from_wire(wire(event_time=later))


def test_timestamps_before_1970_are_rejected_and_the_epoch_itself_is_not():
    with pytest.raises(ValidationError, match="before 1970"):
        ClickEvent.from_wire(wire(event_time="1969-12-31T23:59:59Z"))
    assert ClickEvent.from_wire(wire(event_time="1970-01-01T00:00:00Z")).timestamp == 0.0


@pytest.mark.parametrize("when", ["9999-12-31T23:00:00-05:00", "0001-01-01T00:00:00+05:00"])
def test_timestamps_beyond_the_calendar_in_utc_are_validation_errors(when):
    # Converting these to UTC overflows; an OverflowError would escape validation and crash the worker.
    with pytest.raises(ValidationError, match="out of range"):
        ClickEvent.from_wire(wire(event_time=when))


def test_naive_timestamps_and_unknown_fields_are_rejected():
    with pytest.raises(ValidationError):
        ClickEvent.from_wire(wire(event_time="2012-04-03T18:00:00"))
    with pytest.raises(ValidationError, match="extra"):
        ClickEvent.from_wire(wire(price=3))


def test_other_time_zones_are_normalised_to_utc():
    event = ClickEvent.from_wire(wire(event_time="2012-04-03T14:00:00-04:00"))
    assert event.event_time == datetime(2012, 4, 3, 18, tzinfo=UTC)
    assert event.event_time.utcoffset() == timedelta(0)


def test_oversized_payloads_are_rejected_before_parsing():
    with pytest.raises(ValueError, match="exceeds"):
        ClickEvent.from_wire(wire(text="x" * MAX_PAYLOAD_BYTES))


def test_dead_letter_keeps_binary_payloads_intact():
    letter = DeadLetter.for_payload(b"\x00\xff", "bad", "clicks", 2, 7)
    assert letter.payload_encoding == "base64"
    assert base64.b64decode(letter.payload) == b"\x00\xff"
    assert DeadLetter.from_wire(letter.to_wire()) == letter


@pytest.mark.parametrize("raw", [b"\x00" * 170_000, bytes(range(256)) * 3000], ids=["escaped", "binary"])
def test_dead_letter_of_an_oversized_payload_keeps_its_start_and_size(raw):
    # JSON escaping or base64 grows a payload; whole, these would exceed Kafka's 1 MB message limit.
    letter = DeadLetter.for_payload(raw, "too big", "clicks", 0, 1)
    assert letter.payload_bytes == len(raw)
    assert len(letter.to_wire()) < 200_000
    kept = base64.b64decode(letter.payload) if letter.payload_encoding == "base64" else letter.payload.encode()
    assert kept == raw[:MAX_PAYLOAD_BYTES]
    assert DeadLetter.for_payload(b"{}", "small", "clicks", 0, 1).payload_bytes is None


def test_committed_json_schemas_match_the_models():
    for filename, text in render().items():
        assert (SCHEMA_DIR / filename).read_text() == text, f"run `clickcast schemas export` ({filename} is stale)"


def test_json_schema_encodes_the_coordinate_bounds():
    schema = json.loads(render()["click_event.schema.json"])
    assert schema["properties"]["latitude"]["maximum"] == 90.0
    assert set(schema["required"]) >= {"event_id", "user_id", "item_id", "event_time", "latitude", "longitude"}


def _prediction_fields(rng, explained: bool) -> dict:
    def number() -> float:
        if rng.random() < 0.1:
            return float(rng.choice([0.0, -0.0, 1.0]))
        return float(rng.uniform(-1, 1) * 10.0 ** rng.integers(-12, 16))

    def when() -> datetime:
        return datetime.fromtimestamp(float(rng.uniform(0, 4e9)), UTC)

    features = {f"f{i}": number() for i in range(8)} | {"count_1h": int(rng.integers(0, 500)), "geohash6": "dr5ru7"}
    return {
        "event_id": f"e:{rng.integers(1e9)}",
        "user_id": f"u-{rng.integers(1e6)}",
        "items": [{"item_id": f"4b{i:022d}", "score": number()} for i in range(10)],
        "model_name": "clickcast",
        "model_version": str(rng.integers(1, 50)),
        "features": features,
        "event_time": ClickEvent(**(GOOD | {"event_time": "2012-04-03T14:00:09.5-04:00"})).event_time,
        "published_at": when(),
        "received_at": when(),
        "predicted_at": when(),
        "latency": {"kafka_in_ms": abs(number()), "features_ms": 0.25, "feast_write_ms": 3.0, "triton_ms": 6.5}
        | {"kafka_out_ms": [None, 1.5][int(rng.integers(2))], "total_ms": abs(number())},
        "explanation": [{"event_id": "e:1", "item_id": "4bx", "weight": number()}] if explained else None,
    }


@pytest.mark.parametrize("explained", [False, True])
def test_prediction_wire_is_byte_for_byte_the_models_own(explained):
    rng = np.random.default_rng(7)
    for _ in range(300):
        fields = _prediction_fields(rng, explained)
        assert prediction_wire(fields) == PredictionEvent.model_validate(fields).to_wire()


def test_prediction_wire_refuses_a_non_finite_feature():
    fields = _prediction_fields(np.random.default_rng(0), False)
    fields["features"]["f0"] = math.nan
    with pytest.raises(ValueError, match="non-finite"):
        prediction_wire(fields)


@pytest.mark.parametrize("change", [{"model_version": ...}, {"extra": 1}])
def test_prediction_wire_refuses_missing_and_unknown_fields(change):
    fields = _prediction_fields(np.random.default_rng(0), False) | change
    fields = {k: v for k, v in fields.items() if v is not ...}
    with pytest.raises(ValueError, match="not those of a PredictionEvent"):
        prediction_wire(fields)
