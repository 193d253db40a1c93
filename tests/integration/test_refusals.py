"""Triton refuses one history of a batch: that history alone is refused, the rest of the batch is answered.

The refused history carries coordinates that `ClickEvent` validation keeps out of the stream (as a corrupt saved
history could still carry them); the served model answers such a request with an error (`request_histories`).
"""

from __future__ import annotations

import asyncio

import pytest

from features.history import Visit
from streams.predictor import Prediction, RequestRefused, TritonPredictor
from streams.refusals import Isolation, Refusal

pytestmark = pytest.mark.integration

T0 = 1.35e9


def test_triton_refuses_a_history_alone_and_answers_the_rest(stack):
    good = [
        [Visit(f"e{i}-{j}", T0 + 60 * j, f"place-{(i + j) % 5}", 40.75, -73.98) for j in range(i + 1)] for i in range(6)
    ]
    bad = [Visit("bad", T0, "place-0", 95.0, -73.98)]

    async def scenario() -> tuple[list[Prediction], list[Prediction | Refusal]]:
        predictor = TritonPredictor(stack.triton)
        await predictor.start()
        try:
            with pytest.raises(RequestRefused, match="outside ±90"):
                await predictor.predict([bad])
            alone = await predictor.predict(good)
            return alone, await Isolation(predictor).predict([*good[:4], bad, *good[4:]])
        finally:
            await predictor.close()

    alone, answers = asyncio.run(scenario())
    refusal = answers.pop(4)
    assert isinstance(refusal, Refusal) and "outside ±90" in refusal.reason
    assert [(a.items, a.model_version) for a in answers] == [(a.items, a.model_version) for a in alone]
    assert all(a.model_version for a in answers)
