"""Triton serves exactly the trainer's model: same top-k items and scores (within 1e-4) for the same histories.

The test re-exports the newest version in the served repository as a new version (same weights, with the visit
prior switched on if validation chose weight 0, so that its part of the scores is compared too), waits for
Triton's repository poll to load it, compares, then re-exports the original so the stack serves it again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np
import pytest

from deploy.stack.triton import model_versions
from tests.integration.conftest import KEEP_ALL
from trainer.data import PAD, UNK
from trainer.model.bundle import CONFIG_FILE, ClickcastModel
from trainer.model.explain import attribution
from trainer.model.inputs import Histories
from trainer.serving.export import MODEL_FILES, export_model
from trainer.serving.graph import TOLERANCE
from trainer.serving.graph import sample_histories as graph_sample_histories

LOAD_TIMEOUT_S = 180.0
PRIOR_WEIGHT = 0.3  # used when the served version's own weight is 0


def sample_histories(model: ClickcastModel, n_rows: int = 12, seed: int = 0) -> tuple[np.ndarray, Histories]:
    """The export check's histories (full, short, a cold user, an unknown item: `graph.sample_histories`) with their
    raw ids, the unknown one an id the model never saw. Returns (raw ids [B, L], the same as indices): indices straight
    from the vocabulary, independent of the serving code's parsing of the request."""
    h = graph_sample_histories(model, n_rows, seed)
    raw = np.asarray(model.item_ids, dtype=object)[h.items]
    raw[h.items == UNK] = "never-seen-item"
    raw[h.items == PAD] = ""
    return raw, h


def wait_ready(client, name: str, version: int) -> None:
    deadline = time.monotonic() + LOAD_TIMEOUT_S
    while time.monotonic() < deadline:
        try:
            if client.is_model_ready(name, str(version)):
                return
        except Exception:  # not loaded yet: the server answers with an error status
            pass
        time.sleep(1.0)
    pytest.fail(f"Triton did not load {name} version {version} within {LOAD_TIMEOUT_S:.0f} s")


def infer(client, name: str, version: int, raw: np.ndarray, h: Histories, outputs: list[str]):
    inputs, requested = infer_inputs(raw, h, outputs)
    return client.infer(name, inputs, model_version=str(version), outputs=requested)


def infer_inputs(raw: np.ndarray, h: Histories, outputs: list[str]) -> tuple[list, list]:
    import tritonclient.grpc as grpcclient

    inputs = []
    for tensor, array, dtype in (
        ("ITEM_IDS", np.array([[" ".join(i for i in row if i).encode()] for row in raw], dtype=object), "BYTES"),
        ("TIMESTAMPS", h.ts.astype(np.float64), "FP64"),
        ("LATITUDES", h.lat.astype(np.float32), "FP32"),
        ("LONGITUDES", h.lon.astype(np.float32), "FP32"),
    ):
        t = grpcclient.InferInput(tensor, list(array.shape), dtype)
        t.set_data_from_numpy(array)
        inputs.append(t)
    return inputs, [grpcclient.InferRequestedOutput(o) for o in outputs]


def with_visit_prior(source: Path, target: Path) -> Path:
    """A copy of the model files in `source` whose visit prior is on."""
    for file in MODEL_FILES:
        shutil.copy2(source / file, target / file)
    config = json.loads((source / CONFIG_FILE).read_text())
    config["visit_prior_weight"] = config.get("visit_prior_weight") or PRIOR_WEIGHT
    (target / CONFIG_FILE).write_text(json.dumps(config))
    return target


def check_parity(grpc_url: str, repository: Path, name: str) -> None:
    """Export the newest version again (prior on), wait for it, compare Triton to the torch forward, restore."""
    import tritonclient.grpc as grpcclient

    served = model_versions(repository, name)
    assert served, f"no version of {name} in {repository} to re-export"
    original = repository / name / str(served[-1])
    with tempfile.TemporaryDirectory() as tmp:
        version = export_model(with_visit_prior(original, Path(tmp)), repository, name, keep=KEEP_ALL)
    client = grpcclient.InferenceServerClient(grpc_url)
    try:
        wait_ready(client, name, version)
        model = ClickcastModel.load(repository / name / str(version))
        assert model.cfg.visit_prior_weight > 0
        raw, h = sample_histories(model)
        expected = model.log_probs(h).numpy()
        k = int(client.get_model_config(name).config.output[0].dims[0])

        response = infer(client, name, version, raw, h, ["TOP_ITEMS", "TOP_SCORES"])
        assert response.get_response().model_version == str(version)
        assert response.as_numpy("ATTRIBUTION") is None  # not requested, not computed
        index = {item: i for i, item in enumerate(model.item_ids)}
        got_items = np.vectorize(lambda b: b.decode("utf-8"))(response.as_numpy("TOP_ITEMS"))
        got = np.vectorize(index.__getitem__, otypes=[np.int64])(got_items)
        scores = response.as_numpy("TOP_SCORES")
        # The best scores, and the model's own scores of the items served: right items whatever order near-ties take.
        np.testing.assert_allclose(scores, -np.sort(-expected, axis=1)[:, :k], atol=TOLERANCE, rtol=0)
        np.testing.assert_allclose(np.take_along_axis(expected, got, 1), scores, atol=TOLERANCE, rtol=0)

        explained = infer(client, name, version, raw, h, ["TOP_ITEMS", "ATTRIBUTION"])
        weights = explained.as_numpy("ATTRIBUTION")
        served_first = np.vectorize(lambda b: index[b.decode("utf-8")], otypes=[np.int64])(
            explained.as_numpy("TOP_ITEMS")[:, 0]
        )
        np.testing.assert_allclose(weights, attribution(model, h, top=served_first), atol=TOLERANCE, rtol=0)
        assert (weights[h.items == PAD] == 0).all()
        check_malformed_alone_fails(client, name, version, raw, h, got_items)
        wait_ready(client, name, export_model(original, repository, name, keep=KEEP_ALL))
    finally:
        client.close()


def check_malformed_alone_fails(client, name: str, version: int, raw: np.ndarray, h: Histories, top_items):
    """Requests sent together (so the dynamic batcher may score them in one call), the first with a NaN
    latitude: that one gets its own error, the others their own top items."""
    import queue

    bad = Histories(items=h.items, ts=h.ts, lat=h.lat.copy(), lon=h.lon)
    bad.lat[0, -1] = np.nan
    done: queue.Queue = queue.Queue()
    for row in range(len(raw)):
        source = bad if row == 0 else h
        one = Histories(*(getattr(source, f)[row : row + 1] for f in ("items", "ts", "lat", "lon")))
        inputs, outputs = infer_inputs(raw[row : row + 1], one, ["TOP_ITEMS"])
        client.async_infer(
            name,
            inputs,
            lambda result, error, row=row: done.put((row, result, error)),
            model_version=str(version),
            outputs=outputs,
        )
    answers = {row: (result, error) for row, result, error in (done.get(timeout=60) for _ in range(len(raw)))}
    error = str(answers[0][1])
    assert "bad request" in error and "coordinates" in error, error
    for row in range(1, len(raw)):
        result, error = answers[row]
        assert error is None, error
        got = [b.decode("utf-8") for b in result.as_numpy("TOP_ITEMS")[0]]
        assert got == list(top_items[row])


@pytest.mark.integration
def test_triton_scores_equal_the_torch_forward(stack):
    check_parity(stack.triton.grpc_url, stack.model_repository, stack.triton.model_name)
