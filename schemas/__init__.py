"""Versioned event schemas for every message on the bus."""

from schemas.events import (
    SCHEMA_VERSION,
    ClickEvent,
    DeadLetter,
    PredictionEvent,
    ScoredItem,
    StageLatency,
)

__all__ = ["SCHEMA_VERSION", "ClickEvent", "DeadLetter", "PredictionEvent", "ScoredItem", "StageLatency"]
