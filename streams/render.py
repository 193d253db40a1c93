"""One-line human renderings of output events, for `tail` and the demo."""

from __future__ import annotations

from collections.abc import Callable

from pydantic import ValidationError

from schemas.events import DeadLetter, PredictionEvent


def render_prediction(raw: bytes) -> str:
    p = PredictionEvent.model_validate_json(raw)
    top = ", ".join(f"{i.item_id}:{i.score:.2f}" for i in p.items[:5])
    return (
        f"{p.event_time:%Y-%m-%d %H:%M} user {p.user_id:>6} -> [{top}] "
        f"({p.model_name} v{p.model_version}, {p.latency.total_ms:.1f} ms, "
        f"{p.features.get('count_24h', '?')} events/24h, {p.features.get('geohash6', '')})"
    )


def render_dead_letter(raw: bytes) -> str:
    d = DeadLetter.model_validate_json(raw)
    return f"{d.source_topic}[{d.source_partition}]@{d.source_offset}: {d.error} <- {d.payload[:80]!r}"


def message_line(msg, render: Callable[[bytes], str], raw_json: bool = False) -> str:
    """One Kafka message as a line; one that is not the topic's schema (another producer's, a tombstone) says so."""
    where = f"{msg.topic()}[{msg.partition()}]@{msg.offset()}"
    value = msg.value()
    if value is None:
        return f"{where}: empty message"
    try:
        return value.decode() if raw_json else render(value)
    except (ValidationError, UnicodeDecodeError) as exc:
        return f"{where}: unreadable message ({type(exc).__name__}, {len(value)} bytes)"
