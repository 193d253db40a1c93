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
    share = visit_prior.visit_shares(items, ts, tau_days=10.0)[0]
    w_old = np.exp(-1.0)  # the first visit to 2 is 10 days older than the newest event
    expected = [0, 0, (1 + w_old) / (2 + w_old), (1 + w_old) / (2 + w_old), 1 / (2 + w_old)]
    np.testing.assert_allclose(share, expected, rtol=1e-12)


def test_an_empty_history_leaves_the_network_unchanged():
    items, ts = np.zeros((1, 3), np.int64), np.zeros((1, 3))
    shares = visit_prior.visit_shares(items, ts, 30.0)
    assert not shares.any()
    log_p = torch.log_softmax(torch.randn(1, N_ITEMS), -1)
    torch.testing.assert_close(visit_prior.apply(log_p, items, shares, 0.5), log_p)


def test_apply_renormalises_and_raises_visited_places():
    log_p = torch.full((1, N_ITEMS), -np.log(N_ITEMS - 2))
    log_p[:, [PAD, UNK]] = float("-inf")
    items = np.array([[3, 3, 4]])
    shares = visit_prior.visit_shares(items, np.zeros((1, 3)), 30.0)
    assert visit_prior.apply(log_p, items, shares, 0.0) is log_p
    out = visit_prior.apply(log_p, items, shares, 0.5)
    assert torch.logsumexp(out, -1).item() == pytest.approx(0.0, abs=1e-6)
    assert out[0, 3] > out[0, 4] > out[0, 2] == out[0, 5]
    assert out[0, PAD] == float("-inf")


def test_apply_equals_the_dense_product_of_experts():
    """The module docstring's formula over every item, computed directly."""
    rng = np.random.default_rng(0)
    items = rng.integers(0, N_ITEMS, (8, 7))
    ts = np.sort(rng.uniform(0, 60 * DAY_S, (8, 7)), axis=1)
    log_p = torch.log_softmax(torch.from_numpy(rng.normal(0, 1, (8, N_ITEMS))).float(), -1)
    weight, tau = 0.6, 10.0
    visit = np.where(items > UNK, np.exp(-(ts[:, -1:] - ts) / (tau * DAY_S)), 0.0)
    share = np.zeros((8, N_ITEMS))
    for row in range(8):
        np.add.at(share[row], items[row], visit[row])
    share /= np.maximum(share.sum(1, keepdims=True), 1e-300)
    dense = torch.log_softmax(log_p + weight * torch.from_numpy(np.log(share + FLOOR)).float(), -1)
    out = visit_prior.apply(log_p, items, visit_prior.visit_shares(items, ts, tau), weight)
    torch.testing.assert_close(out, dense, rtol=1e-5, atol=1e-5)


def batches(targets_visited: bool, seed: int = 0):
    """Flat network scores; each row visited item 2 three times and item 3 once; the target is 2 or 5."""
    rng = np.random.default_rng(seed)
    for _ in range(3):
        log_p = torch.log_softmax(torch.from_numpy(rng.normal(0, 0.1, (16, N_ITEMS))).float(), -1)
        items = np.tile([2, 2, 3, 2], (16, 1))
        ts = np.tile(np.arange(4.0) * DAY_S, (16, 1))
        yield log_p, items, ts, np.full(16, 2 if targets_visited else 5)


def test_choose_picks_a_weight_when_the_history_predicts_the_targets_and_none_when_it_misleads():
    weight, tau, mrr = visit_prior.choose(batches(True))
    assert weight > 0 and mrr[(weight, tau)] == 1.0
    weight, _, mrr = visit_prior.choose(batches(False))
    assert weight == 0.0
    assert len(mrr) == len(visit_prior.WEIGHTS) * len(visit_prior.TAU_DAYS)
