"""Isolating the clicks a serving model refuses, so that one poison history cannot hold its partition forever.

An outage (Triton down, a timeout) is waited out: the batch stays unacknowledged and is retried
(`streams.retry`). A refusal is different: Triton answered, with an error, and the same request would be refused
again on every retry. The batch is halved until each refused click stands alone; a click alone that is refused again
right after the canary was served is refused for its content, and goes to the dead letters with Triton's reason while
the others are answered. The canary is the newest history the model answered (a one-visit history of an unknown place
until there is one), so a model that refuses every real history is caught by it too: when the canary is refused, the
model itself is broken (or being swapped), the refusal propagates, and the whole batch waits, as in an outage. During
a rollout to another history length, requests of the old shape are refused until the predictor reads the new one:
such a click is answered when tried again after the canary.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from features.history import Visit
from streams.predictor import Prediction, RequestRefused
from streams.retry import Stopping, never

CANARY_ITEM = "clickcast-canary"  # an id no model knows: the canary is a cold user at an unknown place


class Scorer(Protocol):
    """What is asked for predictions; raises `RequestRefused` for a request the model answered with an error."""

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]: ...


@dataclass(frozen=True)
class Refusal:
    """The model's answer for a click whose history it refuses."""

    reason: str


def first_canary() -> list[Visit]:
    return [Visit(CANARY_ITEM, time.time(), CANARY_ITEM, 0.0, 0.0)]


class Isolation:
    """Predictions for a worker's batches, refused clicks isolated (see the module's docstring)."""

    def __init__(self, predictor: Scorer, stopping: Callable[[], bool] = never) -> None:
        self.predictor = predictor
        self.stopping = stopping  # halving sends a request at a time: it stops with the worker, like a retry
        self.canary: Sequence[Visit] = first_canary()

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction | Refusal]:
        """One answer per history: a prediction, or the refusal of a history the model refuses while it answers the
        canary. Raises what the predictor raises for an outage, `RequestRefused` when the canary is refused, and
        `Stopping` when the worker stops during the halving."""
        try:
            answers: list[Prediction | Refusal] = list(await self.predictor.predict(histories))
        except RequestRefused:
            answers = await self._isolate(histories)
        for history, answer in zip(histories, answers, strict=True):
            if isinstance(answer, Prediction):
                self.canary = history
        return answers

    async def _isolate(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction | Refusal]:
        """Answers for `histories`, which the model refused together: halves until each refused history stands
        alone. A history alone is judged right after the canary is served, and tried again then: the refusal may
        have come from a rollout (a request of the shape read before it), which the failed request made the predictor
        read again. k refused histories among n cost about 2k (log2(n) + 1) requests."""
        if self.stopping():
            raise Stopping("the worker stops while the model's refusals of a batch are isolated")
        if len(histories) == 1:
            await self.predictor.predict([self.canary])
            try:
                return list(await self.predictor.predict(histories))
            except RequestRefused as exc:
                return [Refusal(str(exc))]
        middle = len(histories) // 2
        answers: list[Prediction | Refusal] = []
        for part in (histories[:middle], histories[middle:]):
            try:
                answers += await self.predictor.predict(part)
            except RequestRefused:
                answers += await self._isolate(part)
        return answers
