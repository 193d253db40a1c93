"""The exported scoring graph (ONNX Runtime) gives the torch path's top-k: every part of the model switched on and
off, batches and history lengths other than the ones it was traced with, cold users and unknown items."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from trainer.data import PAD
from trainer.model.bundle import ClickcastModel
from trainer.model.inputs import Histories
from trainer.model.network import ClickcastNet
from trainer.model.text import TEXT_DIM
from trainer.serving.graph import TOLERANCE, GraphScorer, ScoringGraph, export_graph, sample_histories

TOP_K = 5


def variant(fitted, **changes) -> ClickcastModel:
    """The fitted model's vocabulary with a freshly initialised network of another configuration."""
    base = fitted.model
    cfg = base.cfg.replace(**changes)
    torch.manual_seed(0)
    net = ClickcastNet(cfg, n_items=len(base.item_ids), n_cells=len(base.cells)).eval()
    if cfg.use_text:
        net.embed.items.set_text(torch.randn(len(base.item_ids), TEXT_DIM))
    return ClickcastModel(cfg, net, base.cells, base.item_ids, base.item_lat, base.item_lon)


def assert_same_top_k(model: ClickcastModel, scorer: GraphScorer, h: Histories) -> None:
    scores, top = scorer.top_k(h)
    log_p = model.log_probs(h).numpy()
    np.testing.assert_allclose(scores, -np.sort(-log_p, axis=-1)[:, :TOP_K], atol=TOLERANCE, rtol=0)
    # The model's own scores of the items the graph picked: right items, whatever order ties take.
    np.testing.assert_allclose(np.take_along_axis(log_p, top, axis=-1), scores, atol=TOLERANCE, rtol=0)


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
    for rows, seed in ((1, 1), (7, 2), (33, 3)):  # batch sizes the trace never saw
        assert_same_top_k(model, scorer, sample_histories(model, rows, seed))
    short = sample_histories(model, 5, 4)  # every row shorter than the window: columns trimmed off
    pad(short, np.s_[:, : model.cfg.max_len // 2])
    assert_same_top_k(model, scorer, short)
    cold = sample_histories(model, 4, 5)
    pad(cold, np.s_[:])  # cold users only: one column after trimming
    assert_same_top_k(model, scorer, cold)


def pad(h: Histories, where) -> None:
    """Make the events at `where` padding, as a request carries it (no time, no place)."""
    h.items[where], h.ts[where], h.lat[where], h.lon[where] = PAD, 0.0, 0.0, 0.0


@pytest.mark.parametrize(
    "wrong",
    [lambda scores, top: (scores + 10 * TOLERANCE, top), lambda scores, top: (scores, top.roll(1, dims=-1))],
    ids=["scores", "items"],
)
def test_an_export_that_scores_differently_is_refused(fitted, tmp_path, monkeypatch, wrong):
    traced = ScoringGraph.forward
    monkeypatch.setattr(ScoringGraph, "forward", lambda self, *tensors: wrong(*traced(self, *tensors)))
    with pytest.raises(RuntimeError, match="differs"):
        export_graph(fitted.model, tmp_path / "model.onnx", TOP_K)
