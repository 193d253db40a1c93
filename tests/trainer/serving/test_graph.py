"""The exported scoring graph (ONNX Runtime) gives the torch path's top-k: every part of the model switched on and
off, batches and history lengths other than the ones it was traced with, cold users and unknown items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.data import PAD, UNK
from trainer.model.bundle import ClickcastModel
from trainer.model.inputs import Histories
from trainer.model.network import ClickcastNet
from trainer.serving.graph import TOLERANCE, GraphScorer, ScoringGraph, export_graph

TOP_K = 5


def variant(fitted, seed: int = 0, **changes) -> ClickcastModel:
    """The fitted model's vocabulary with a freshly initialised network of another configuration."""
    base = fitted.model
    cfg = base.cfg.replace(**changes)
    torch.manual_seed(seed)
    net = ClickcastNet(cfg, n_items=len(base.item_ids), n_cells=len(base.cells)).eval()
    return ClickcastModel(cfg, net, base.cells, base.item_ids, base.item_lat, base.item_lon)


def histories(model: ClickcastModel, rows: int, length: int, seed: int) -> Histories:
    rng = np.random.default_rng(seed)
    items = rng.choice(np.arange(UNK + 1, len(model.item_ids)), size=(rows, length))
    items[:, length // 2 :] = rng.choice(items[:, : length // 2].ravel(), size=(rows, length - length // 2))
    items[0, :-2] = PAD  # two events
    if rows > 2:
        items[1, -4] = UNK
        items[2] = PAD  # a cold user
    ts = 1.36e9 + np.cumsum(rng.uniform(60, 3 * 86400, (rows, length)), axis=1)
    lat, lon = model.item_lat[items].astype(np.float32), model.item_lon[items].astype(np.float32)
    pad = items == PAD
    ts[pad], lat[pad], lon[pad] = 0.0, 0.0, 0.0
    return Histories(items=items, ts=ts, lat=lat, lon=lon)


def assert_same_top_k(model: ClickcastModel, scorer: GraphScorer, h: Histories) -> None:
    scores, top = scorer.top_k(h)
    want = torch.topk(model.log_probs(h), TOP_K, dim=-1)
    np.testing.assert_allclose(scores, want.values.numpy(), atol=TOLERANCE, rtol=0)
    assert (top == want.indices.numpy()).all()


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"visit_prior_weight": 0.4, "visit_prior_tau_days": 3.0},
        {"layers": 2},
        {"use_repeat": False},
        {"use_geo": False, "use_time": False},
        {"use_text": True},
    ],
    ids=["as-fitted", "visit-prior", "two-layers", "no-repeat", "no-geo-no-time", "text"],
)
def test_the_graph_scores_as_the_torch_path(fitted, tmp_path, changes):
    model = variant(fitted, **changes) if changes else fitted.model
    export_graph(model, tmp_path / "model.onnx", TOP_K)
    scorer = GraphScorer(tmp_path / "model.onnx", model)
    assert scorer.k == TOP_K
    length = model.cfg.max_len
    for rows, seed in ((1, 1), (7, 2), (33, 3)):  # batch sizes the trace never saw
        assert_same_top_k(model, scorer, histories(model, rows, length, seed))
    short = histories(model, 5, length, 4)  # every row shorter than the window: columns trimmed off
    short.items[:, : length // 2] = PAD
    assert_same_top_k(model, scorer, short)


def test_an_export_that_scores_differently_is_refused(fitted, tmp_path, monkeypatch):
    monkeypatch.setattr(ScoringGraph, "_mix_repeat", lambda self, log_gen, *args: log_gen)  # the repeat path left out
    with pytest.raises(RuntimeError, match="differ"):
        export_graph(fitted.model, tmp_path / "model.onnx", TOP_K)
