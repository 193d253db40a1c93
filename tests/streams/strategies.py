"""Hypothesis strategies for the stream's input: clicks the event schema accepts, at the edges of what it accepts,
and payloads a hostile or broken producer could publish."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

from hypothesis import strategies as st

from schemas.events import MAX_CATEGORY_LENGTH, MAX_ID_LENGTH, ClickEvent

# schemas.events.ID_CHARS: printable ASCII without the space.
identifiers = st.text(
    alphabet=st.characters(min_codepoint=0x21, max_codepoint=0x7E), min_size=1, max_size=MAX_ID_LENGTH
)

# Up to a minute ago: the schema's future skew is measured against the clock when the click is parsed.
event_times = st.datetimes(
    min_value=datetime(1970, 1, 1),
    max_value=datetime.now(UTC).replace(tzinfo=None) - timedelta(minutes=1),
    timezones=st.just(UTC),
)
latitudes = st.floats(min_value=-90.0, max_value=90.0, allow_nan=False)
longitudes = st.floats(min_value=-180.0, max_value=180.0, allow_nan=False)


def clicks(users: st.SearchStrategy[str] = identifiers, items: st.SearchStrategy[str] = identifiers):
    """Clicks the schema accepts: any identifiers, times from 1970 to now, coordinates up to the poles and the
    antimeridian, and optional free text."""
    return st.builds(
        ClickEvent,
        event_id=identifiers,
        user_id=users,
        item_id=items,
        event_time=event_times,
        latitude=latitudes,
        longitude=longitudes,
        event_type=st.none() | st.text(max_size=32),
        category=st.none() | st.text(max_size=MAX_CATEGORY_LENGTH),
        text=st.none() | st.text(max_size=64),
    )


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=10,
)


@st.composite
def spoiled_clicks(draw) -> bytes:
    """A valid click's JSON with a field dropped, replaced by any JSON value, or one field too many."""
    fields = json.loads(draw(clicks()).to_wire())
    name = draw(st.sampled_from([*sorted(fields), "unexpected"]))
    if draw(st.booleans()):
        fields.pop(name, None)
    else:
        fields[name] = draw(json_values)
    return json.dumps(fields).encode()  # NaN and Infinity as JSON's non-standard literals, as some producers write


# Anything a producer could put on the topic, as bytes (None: a message without a value).
payloads = st.one_of(st.none(), st.binary(max_size=200), spoiled_clicks(), st.text(max_size=200).map(str.encode))
