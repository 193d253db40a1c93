"""Isolating the clicks a serving model refuses, so that one poison history cannot hold its partition forever.

An outage (Triton down, a timeout) is waited out: the batch stays unacknowledged and is retried
(`streams.retry`). A refusal is different: Triton answered, with an error, and the same request would be refused
again on every retry. When a plain one-visit history (the canary) is served, the model works and the refusal is about
the batch's content: the batch is halved until each refused click stands alone, and those clicks go to the dead
letters with Triton's reason while the others are answered. When the canary is refused too, the model itself is
broken (or being swapped), so the refusal propagates and the whole batch waits, as in an outage.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from features.history import Visit
from streams.predictor import Prediction, RequestRefused

CANARY_ITEM = "clickcast-canary"  # an id no model knows: the canary is a cold user at an unknown place


class Scorer(Protocol):
    """What is asked for predictions; raises `RequestRefused` for a request the model answered with an error."""

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]: ...


@dataclass(frozen=True)
class Refusal:
    """The model's answer for a click whose history it refuses."""

    reason: str


def canary() -> list[Visit]:
    return [Visit(CANARY_ITEM, time.time(), CANARY_ITEM, 0.0, 0.0)]


async def predict_isolating(predictor: Scorer, histories: Sequence[Sequence[Visit]]) -> list[Prediction | Refusal]:
    """One answer per history: a prediction, or the refusal of a history the model refuses while serving others.
    Raises what `predictor.predict` raises for an outage, and `RequestRefused` when the model refuses the canary."""
    try:
        return list(await predictor.predict(histories))
    except RequestRefused as exc:
        refused = exc
    await predictor.predict([canary()])
    return await _halves(predictor, histories, refused)


async def _halves(
    predictor: Scorer, histories: Sequence[Sequence[Visit]], refused: RequestRefused
) -> list[Prediction | Refusal]:
    """Answers for `histories`, which the model refused together (`refused`): k refused histories among n cost
    about 2k log2(n) requests."""
    if len(histories) == 1:
        return [Refusal(str(refused))]
    middle = len(histories) // 2
    answers: list[Prediction | Refusal] = []
    for part in (histories[:middle], histories[middle:]):
        try:
            answers += await predictor.predict(part)
        except RequestRefused as exc:
            answers += await _halves(predictor, part, exc)
    return answers
