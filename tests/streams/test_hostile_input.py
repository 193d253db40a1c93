"""Hostile input, generated: whatever a producer publishes, every message gets exactly one outcome (an answer or a
dead letter saying why), valid clicks among the garbage are still answered, and the batch never raises (a batch
that raises stops the worker, which would read the same messages again after every restart)."""

from __future__ import annotations

import asyncio
import base64
from dataclasses import replace

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from schemas.events import MAX_PAYLOAD_BYTES, ClickEvent, DeadLetter
from streams.processor import ClickProcessor
from streams.settings import StreamSettings
from streams.testing import DictState, FrequencyPredictor, ListSink, messages_from
from tests.streams.strategies import clicks, payloads

# A few users, so that valid clicks build histories that later garbage lands between.
users = st.sampled_from(["u1", "u2", "u3"])
# (payload, key): a valid click keyed by its user, or anything under a user's key or none.
messages = st.one_of(
    clicks(users=users).map(lambda c: (c.to_wire(), c.user_id.encode())),
    st.tuples(payloads, st.none() | users.map(str.encode)),
)

SLOW_OK = settings(deadline=None, suppress_health_check=[HealthCheck.too_slow])


def _raw(message: DeadLetter) -> bytes:
    return base64.b64decode(message.payload) if message.payload_encoding == "base64" else message.payload.encode()


@SLOW_OK
@given(st.lists(st.lists(messages, min_size=1, max_size=25), min_size=1, max_size=3))
def test_every_message_gets_one_answer_or_one_dead_letter_and_nothing_raises(batches):
    processor = ClickProcessor(DictState(), ListSink(), FrequencyPredictor(), StreamSettings())
    offset = 0
    for batch in batches:
        raw = [
            replace(m, value=value, key=key, offset=offset + i)
            for i, (m, (value, key)) in enumerate(zip(messages_from([b""] * len(batch)), batch, strict=True))
        ]
        offset += len(raw)
        result = asyncio.run(processor.process(raw))

        valid = {}
        for m in raw:
            try:
                event = ClickEvent.from_wire(m.value) if m.value is not None else None
            except ValueError:  # pydantic's ValidationError included
                continue
            if event is not None and m.key == event.user_id.encode():
                valid[m.offset] = event
        assert len(result.predictions) + len(result.dead_letters) == len(raw)
        assert [p.event_id for p in result.predictions] == [valid[o].event_id for o in sorted(valid)]
        by_offset = {m.offset: m for m in raw}
        assert sorted(d.source_offset for d in result.dead_letters) == sorted(set(by_offset) - set(valid))
        for letter in result.dead_letters:
            assert letter.error
            assert _raw(letter) == (by_offset[letter.source_offset].value or b"")[:MAX_PAYLOAD_BYTES]
            assert DeadLetter.from_wire(letter.to_wire()) == letter  # it goes out on the topic as it is
