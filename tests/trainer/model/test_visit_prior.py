import numpy as np
import pytest
import torch

from trainer.data import PAD, UNK
from trainer.model import visit_prior
from trainer.model.visit_prior import DAY_S, FLOOR

N_ITEMS = 6


def test_share_weights_each_visit_by_its_age_and_ignores_padding_and_unknown_items():
    items = np.array([[PAD, UNK, 2, 2, 3]])
    ts = np.array([[0.0, 0.0, 0.0, 10 * DAY_S, 10 * DAY_S]])
    share = visit_prior.log_visit_share(items, ts, N_ITEMS, tau_days=10.0).exp().numpy()[0] - FLOOR
    w_old = np.exp(-1.0)  # the first visit to 2 is 10 days older than the newest event
    assert share[2] == pytest.approx((1 + w_old) / (2 + w_old), rel=1e-5)
    assert share[3] == pytest.approx(1 / (2 + w_old), rel=1e-5)
    assert share[[PAD, UNK, 4, 5]] == pytest.approx(np.zeros(4), abs=1e-7)


def test_an_empty_history_gives_a_flat_prior():
    share = visit_prior.log_visit_share(np.zeros((1, 3), np.int64), np.zeros((1, 3)), N_ITEMS, 30.0)
    assert torch.allclose(share, torch.full((1, N_ITEMS), float(np.log(FLOOR))))


def test_apply_renormalises_and_raises_visited_places():
    log_p = torch.full((1, N_ITEMS), -np.log(N_ITEMS - 2))
    log_p[:, [PAD, UNK]] = float("-inf")
    log_share = visit_prior.log_visit_share(np.array([[3, 3, 4]]), np.zeros((1, 3)), N_ITEMS, 30.0)
    assert visit_prior.apply(log_p, log_share, 0.0) is log_p
    out = visit_prior.apply(log_p, log_share, 0.5)
    assert torch.logsumexp(out, -1).item() == pytest.approx(0.0, abs=1e-6)
    assert out[0, 3] > out[0, 4] > out[0, 2] == out[0, 5]
    assert out[0, PAD] == float("-inf")


def batches(targets_visited: bool, seed: int = 0):
    """Flat network scores; each row visited item 2 three times and item 3 once; the target is 2 or 5."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        log_p = torch.log_softmax(torch.from_numpy(rng.normal(0, 0.1, (16, N_ITEMS))).float(), -1)
        items = np.tile([2, 2, 3, 2], (16, 1))
        ts = np.tile(np.arange(4.0) * DAY_S, (16, 1))
        yield log_p, items, ts, np.full(16, 2 if targets_visited else 5)


def test_choose_picks_a_weight_when_the_history_predicts_the_targets_and_none_when_it_misleads():
    weight, tau, mrr = visit_prior.choose(batches(True), N_ITEMS)
    assert weight > 0 and mrr[(weight, tau)] == 1.0
    weight, _, mrr = visit_prior.choose(batches(False), N_ITEMS)
    assert weight == 0.0
    assert len(mrr) == len(visit_prior.WEIGHTS) * len(visit_prior.TAU_DAYS)
