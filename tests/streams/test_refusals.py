import asyncio

import pytest

from features.history import Visit
from streams.predictor import RequestRefused
from streams.refusals import CANARY_ITEM, Isolation, Refusal
from streams.retry import Stopping
from streams.testing import FrequencyPredictor


def history(i: int, item: str = "p") -> list[Visit]:
    return [Visit(f"e{i}", float(i), item, 40.7, -74.0)]


class Refusing(FrequencyPredictor):
    """Refuses any request holding a history that visits one of `poison` (the canary's item included, if named)."""

    def __init__(self, poison: set[str]) -> None:
        super().__init__()
        self.poison = poison
        self.requests: list[int] = []

    async def predict(self, histories):
        self.requests.append(len(histories))
        bad = [v.item_id for h in histories for v in h if v.item_id in self.poison]
        if bad:
            raise RequestRefused(f"cannot score {bad[0]}")
        return await super().predict(histories)


def test_refused_histories_alone_are_refused_and_the_others_answered_in_order():
    predictor = Refusing({"poison"})
    histories = [history(i, "poison" if i in (3, 12) else f"p{i}") for i in range(16)]
    answers = asyncio.run(Isolation(predictor).predict(histories))
    assert [type(a).__name__ for a in answers] == ["Refusal" if i in (3, 12) else "Prediction" for i in range(16)]
    assert answers[3] == Refusal("cannot score poison")
    expected = [[f"p{i}"] for i in range(16) if i not in (3, 12)]
    assert [a.items for i, a in enumerate(answers) if i not in (3, 12)] == expected
    # The batch, then halves down to each refused history, each judged after a canary: 2 of 16 cost 2 * 2 * (4 + 1).
    assert predictor.requests[0] == 16 and predictor.requests.count(1) >= 2 * 3
    assert len(predictor.requests) - 1 <= 2 * 2 * (4 + 1)


def test_a_batch_the_model_answers_costs_one_request():
    predictor = Refusing({"poison"})
    answers = asyncio.run(Isolation(predictor).predict([history(i) for i in range(8)]))
    assert len(answers) == 8 and predictor.requests == [8]


def test_a_model_that_refuses_the_canary_is_broken_and_the_batch_waits():
    predictor = Refusing({"poison", CANARY_ITEM})
    with pytest.raises(RequestRefused):
        asyncio.run(Isolation(predictor).predict([history(0), history(1, "poison")]))
    assert predictor.requests == [2, 1, 1, 1]  # the batch, each half, the canary: no click went to the dead letters


@pytest.mark.parametrize("size", [1, 5])
def test_clicks_refused_under_the_shape_read_before_a_rollout_are_answered_after_the_canary(size):
    """Requests of the old shape are refused until the predictor reads the new one (on the failed request): the
    canary goes out in the new shape, and the clicks tried again after it are answered, none refused."""

    class RollingOut(Refusing):
        rolled = False

        async def predict(self, histories):
            if any(v.item_id == CANARY_ITEM for h in histories for v in h):
                self.rolled = True
            if not self.rolled:
                self.requests.append(len(histories))
                raise RequestRefused("unexpected shape for input 'LONGITUDES'")
            return await super().predict(histories)

    answers = asyncio.run(Isolation(RollingOut(set())).predict([history(i) for i in range(size)]))
    assert [type(a).__name__ for a in answers] == ["Prediction"] * size


def test_an_outage_while_halving_fails_the_whole_batch():
    class DownAfterTwo(Refusing):
        async def predict(self, histories):
            if len(self.requests) == 2:
                raise ConnectionError("triton went down")
            return await super().predict(histories)

    with pytest.raises(ConnectionError):
        asyncio.run(Isolation(DownAfterTwo({"poison"})).predict([history(0), history(1, "poison")]))


def test_a_model_that_refuses_every_real_history_is_caught_by_the_canary_and_the_batch_waits():
    """The canary becomes the newest history the model answered: a version that refuses every real history but would
    answer the first, synthetic canary (a cold user at an unknown place) is not taken for a stream of poison."""
    predictor = Refusing(set())
    isolation = Isolation(predictor)
    assert len(asyncio.run(isolation.predict([history(0, "home"), history(1, "work")]))) == 2
    predictor.poison = {"home", "work", "gym"}  # the new version refuses every place; a cold user still passes
    with pytest.raises(RequestRefused):
        asyncio.run(isolation.predict([history(2, "gym")]))


def test_halving_stops_with_the_worker():
    isolation = Isolation(Refusing({"poison"}), stopping=lambda: True)
    with pytest.raises(Stopping):
        asyncio.run(isolation.predict([history(0), history(1, "poison")]))
