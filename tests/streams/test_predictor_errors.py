import asyncio

import pytest
from tritonclient.utils import InferenceServerException

from features.history import Visit
from streams.predictor import ModelShape, RequestRefused, TritonPredictor
from streams.settings import TritonSettings


class FailingClient:
    """A Triton client whose every call fails with `status`."""

    def __init__(self, status: str) -> None:
        self.status = status
        self.calls = 0

    async def infer(self, *args, **kwargs):
        self.calls += 1
        raise InferenceServerException(msg="it failed", status=self.status)

    async def get_model_config(self, *args, **kwargs):
        return {
            "config": {"input": [{"name": "TIMESTAMPS", "dims": [4]}], "output": [{"name": "TOP_ITEMS", "dims": [2]}]}
        }


def predict_with(status: str) -> tuple[FailingClient, BaseException]:
    predictor = TritonPredictor(TritonSettings(retries=2))
    predictor.shape = ModelShape(seq_len=4, top_k=2, max_batch=8)
    predictor._client = client = FailingClient(status)
    with pytest.raises(Exception) as raised:
        asyncio.run(predictor.predict([[Visit("e", 1.0, "p", 40.7, -74.0)]]))
    return client, raised.value


@pytest.mark.parametrize("status", ["StatusCode.INVALID_ARGUMENT", "StatusCode.INTERNAL", None])
def test_an_answered_error_is_a_refusal_at_once(status):
    client, raised = predict_with(status)
    assert isinstance(raised, RequestRefused) and "it failed" in str(raised)
    assert client.calls == 1  # the same request would be refused again


@pytest.mark.parametrize("status", ["StatusCode.UNAVAILABLE", "StatusCode.DEADLINE_EXCEEDED"])
def test_an_unanswered_call_is_retried_then_raised_as_an_outage(status):
    client, raised = predict_with(status)
    assert type(raised) is InferenceServerException
    assert client.calls == 3
