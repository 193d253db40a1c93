"""Any click the event schema accepts is scored by the served model, finitely: times from 1970 to now, coordinates
at the poles and the antimeridian, places the model never saw. The stream retries a Triton call until it answers, so
a click the model refused as a bad request, or scored as NaN, would stall its partition or cost its answer."""

from __future__ import annotations

import asyncio

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.predictor import Prediction, sequence_arrays
from streams.processor import ClickProcessor
from streams.settings import StreamSettings
from streams.testing import DictState, ListSink, messages_from
from tests.streams.strategies import clicks, identifiers
from trainer.model.bundle import ClickcastModel
from trainer.serving.graph import GraphScorer, export_graph
from trainer.serving.requests import request_histories

TOP_K = 5


class InProcessServing:
    """The served path for a batch of histories, without the server: the stream's Triton inputs, the python
    backend's request checks, the exported graph."""

    model_name = "clickcast"

    def __init__(self, model: ClickcastModel, scorer: GraphScorer) -> None:
        self.model, self.scorer = model, scorer

    async def predict(self, histories) -> list[Prediction]:
        arrays = sequence_arrays(histories, self.model.cfg.max_len)
        h = request_histories(
            self.model, arrays["ITEM_IDS"], arrays["TIMESTAMPS"], arrays["LATITUDES"], arrays["LONGITUDES"]
        )
        scores, top = self.scorer.top_k(h)
        return [
            Prediction([self.model.item_ids[i] for i in row], [float(s) for s in row_scores], "1")
            for row, row_scores in zip(top, scores, strict=True)
        ]


@pytest.fixture(scope="module")
def serving(fitted, tmp_path_factory) -> InProcessServing:
    path = tmp_path_factory.mktemp("graph") / "model.onnx"
    export_graph(fitted.model, path, TOP_K)
    return InProcessServing(fitted.model, GraphScorer(path, fitted.model))


@settings(deadline=None, max_examples=60, suppress_health_check=[HealthCheck.too_slow])
@given(st.data())
def test_any_click_the_schema_accepts_is_scored_finitely(serving, data):
    known = st.sampled_from(serving.model.item_ids[2:])  # past PAD and UNK
    events = data.draw(st.lists(clicks(users=st.sampled_from(["u1", "u2"]), items=known | identifiers), max_size=40))
    # A failed call ends the batch (Stopping, from the call's error) instead of being retried until it answers.
    processor = ClickProcessor(DictState(), ListSink(), serving, StreamSettings(), stopping=lambda: True)
    result = asyncio.run(processor.process(messages_from(events)))
    assert not result.dead_letters, result.dead_letters  # a non-finite score would make one
    assert [p.event_id for p in result.predictions] == [e.event_id for e in events]
