import asyncio

from features.history import Visit
from streams.predictor import MIN_CHUNK, ModelShape, Prediction, TritonPredictor
from streams.settings import TritonSettings


def recording_predictor(shape: ModelShape) -> tuple[TritonPredictor, list[list[int]]]:
    """A predictor whose requests answer each history with "len<its length>" and record their histories' lengths."""
    predictor = TritonPredictor(TritonSettings())
    predictor.shape = shape
    requests_sent: list[list[int]] = []

    async def fake_chunk(histories):
        requests_sent.append([len(h) for h in histories])
        return [Prediction([f"len{len(h)}"], [0.0], "1") for h in histories]

    predictor._predict_chunk = fake_chunk
    return predictor, requests_sent


def requests(shape: ModelShape, rows: int) -> list[int]:
    """The request sizes `TritonPredictor.predict` sends a batch of `rows` histories in."""
    predictor, requests_sent = recording_predictor(shape)
    got = asyncio.run(predictor.predict([[Visit(f"e{i}", float(i), "p", 0.0, 0.0)] for i in range(rows)]))
    assert len(got) == rows
    return [len(r) for r in requests_sent]


def test_a_batch_is_spread_over_the_instances():
    shape = ModelShape(seq_len=100, top_k=10, max_batch=256, instances=2)
    assert requests(shape, 256) == [128, 128]
    assert requests(shape, 255) == [128, 127]  # two requests, not three
    assert requests(shape, 2 * MIN_CHUNK) == [MIN_CHUNK, MIN_CHUNK]


def test_a_few_rows_more_than_a_request_do_not_cost_a_request_of_their_own():
    two = ModelShape(100, 10, 256, instances=2)
    assert requests(two, MIN_CHUNK + 4) == [MIN_CHUNK + 4]
    assert requests(two, 2 * MIN_CHUNK - 1) == [2 * MIN_CHUNK - 1]
    assert requests(ModelShape(100, 10, 256, instances=4), 40) == [20, 20]
    assert requests(ModelShape(100, 10, 256, instances=4), 8) == [8]
    assert requests(ModelShape(100, 10, 256, instances=3), 49) == [17, 16, 16]  # each at least MIN_CHUNK


def test_an_empty_batch_sends_no_request():
    assert requests(ModelShape(100, 10, 256, instances=2), 0) == []


def test_large_batches_respect_the_batch_limit_in_even_requests():
    assert requests(ModelShape(100, 10, 64, instances=2), 1000) == [63] * 8 + [62] * 8
    assert requests(ModelShape(100, 10, 64, instances=2), 130) == [44, 43, 43]
    assert requests(ModelShape(100, 10, 256, instances=1), 200) == [200]


def test_predictions_come_back_in_request_order_after_length_sorted_chunks():
    predictor, chunks = recording_predictor(ModelShape(seq_len=100, top_k=1, max_batch=256, instances=2))
    lengths = [
        5,
        1,
        40,
        3,
        0,
        17,
        2,
        8,
        30,
        12,
        6,
        9,
        21,
        4,
        7,
        11,
        13,
        33,
        1,
        2,
        50,
        3,
        19,
        26,
        14,
        15,
        16,
        18,
        22,
        24,
        0,
        3,
        9,
    ]
    histories = [[Visit(f"e{i}", float(i), "p", 0.0, 0.0)] * n for i, n in enumerate(lengths)]
    got = asyncio.run(predictor.predict(histories))
    assert [p.items[0] for p in got] == [f"len{n}" for n in lengths]
    assert len(chunks) == 2 and max(chunks[0]) <= min(chunks[1])  # short histories share a request


def test_sequence_arrays_keep_the_newest_visits_right_aligned():
    import numpy as np

    from streams.predictor import sequence_arrays

    visits = [Visit(f"e{i}", 1000.0 + i, f"i{i}", 40.0 + i, -73.0 - i) for i in range(5)]
    arrays = sequence_arrays([visits, visits[:2], []], seq_len=3)
    assert arrays["ITEM_IDS"][:, 0].tolist() == [b"i2 i3 i4", b"i0 i1", b""]
    np.testing.assert_array_equal(arrays["TIMESTAMPS"], [[1002.0, 1003.0, 1004.0], [0.0, 1000.0, 1001.0], [0, 0, 0]])
    np.testing.assert_array_equal(arrays["LATITUDES"][1], np.float32([0.0, 40.0, 41.0]))
    np.testing.assert_array_equal(arrays["LONGITUDES"][0], np.float32([-75.0, -76.0, -77.0]))
    assert arrays["LATITUDES"].dtype == np.float32 and arrays["TIMESTAMPS"].dtype == np.float64


def test_a_failed_call_reads_the_model_shape_again_for_the_next_try():
    import pytest

    predictor = TritonPredictor(TritonSettings())
    predictor.shape = ModelShape(seq_len=100, top_k=10, max_batch=256)
    reloaded = ModelShape(seq_len=200, top_k=5, max_batch=256)

    async def rejected(histories):
        raise RuntimeError("unexpected shape for input TIMESTAMPS")

    async def read_shape():
        return reloaded

    predictor._predict_chunk, predictor._read_shape = rejected, read_shape
    with pytest.raises(RuntimeError, match="unexpected shape"):
        asyncio.run(predictor.predict([[]]))
    assert predictor.shape == reloaded


class ConfigClient:
    """Answers get_model_config as Triton's gRPC client does with as_json=True (int64 dims as strings)."""

    def __init__(self, config: dict) -> None:
        self.config, self.asked = config, []

    async def get_model_config(self, name, as_json=False, client_timeout=None):
        self.asked.append((name, as_json, client_timeout))
        return {"config": self.config}


def shape_of(config: dict) -> tuple[ModelShape, list]:
    predictor = TritonPredictor(TritonSettings(model_name="next_place", timeout_s=1.5))
    predictor._client = client = ConfigClient(config)
    return asyncio.run(predictor._read_shape()), client.asked


def test_the_model_shape_is_read_from_the_served_config():
    inputs = [{"name": n, "data_type": "TYPE_FP32", "dims": ["100"]} for n in ("TIMESTAMPS", "LATITUDES", "LONGITUDES")]
    config = {
        "name": "next_place",
        "max_batch_size": 256,
        "input": [{"name": "ITEM_IDS", "data_type": "TYPE_STRING", "dims": ["1"]}, *inputs],
        "output": [{"name": "TOP_ITEMS", "dims": ["20"]}, {"name": "TOP_SCORES", "dims": ["20"]}],
        "instance_group": [
            {"count": 2, "kind": "KIND_CPU"},
            {"kind": "KIND_CPU"},
        ],  # a count left out (proto default) is taken as 1
    }
    shape, asked = shape_of(config)
    assert shape == ModelShape(seq_len=100, top_k=20, max_batch=256, instances=3)
    assert asked == [("next_place", True, 1.5)]


def test_a_model_without_batching_or_instance_groups_takes_one_row_on_one_instance():
    config = {
        "input": [{"name": "TIMESTAMPS", "dims": ["1", "50"]}],  # without batching the dims hold the batch too
        "output": [{"name": "TOP_ITEMS", "dims": ["1", "5"]}],
    }
    assert shape_of(config)[0] == ModelShape(seq_len=50, top_k=5, max_batch=1, instances=1)
