import numpy as np
import torch

from tests.trainer.conftest import tiny_config
from trainer.data import PAD
from trainer.model.adversarial import fgsm_backward
from trainer.model.codes import CellVocab
from trainer.model.finetune import next_item_loss, window_batch
from trainer.model.network import ClickcastNet
from trainer.model.pretrain import mask_positions, pretrain_epoch
from trainer.model.training_set import build_training_set, next_item_targets


def test_each_target_event_is_trained_once_with_its_longest_context():
    # Two overlapping windows of one user (events 10..14, then 12..16), and a short user (events 20, 21).
    event_index = np.array([[10, 11, 12, 13, 14], [12, 13, 14, 15, 16], [-1, -1, -1, 20, 21]])
    items = np.where(event_index >= 0, event_index, PAD)
    rows, cols, targets = next_item_targets(items, event_index)
    chosen = {int(t): (int(r), int(c)) for r, c, t in zip(rows, cols, targets, strict=True)}
    assert sorted(chosen) == [11, 12, 13, 14, 15, 16, 21]
    assert chosen[13] == (0, 2) and chosen[14] == (0, 3)  # more context in the first window
    assert chosen[15] == (1, 2) and chosen[21] == (2, 3)
    rows, cols, targets = next_item_targets(items, event_index, every_position=True)
    assert len(targets) == 9 and sorted(targets.tolist()).count(13) == 2  # 13 and 14 in both windows


def training_setup(habits, **changes):
    ck, split = habits
    cfg = tiny_config(**changes)
    lat32, lon32 = ck.lat[split.train].astype(np.float32), ck.lon[split.train].astype(np.float32)
    cells = CellVocab.build(lat32, lon32, cfg.geohash_precision)
    torch.manual_seed(0)
    net = ClickcastNet(cfg, ck.vocab.n_items, len(cells))
    data = build_training_set(ck, split.train, cfg, cells, ck.vocab.lat, ck.vocab.lon)
    return cfg, net, data, ck


def test_masking_picks_real_events_and_at_least_one_per_row():
    items = torch.tensor([[PAD, PAD, 3, 4], [5, 6, 7, 8], [PAD, PAD, PAD, PAD]])
    masked = mask_positions(items, 0.0, torch.Generator().manual_seed(0))
    assert masked.tolist() == [[False, False, False, True], [False, False, False, True], [False] * 4]
    masked = mask_positions(items, 1.0, torch.Generator().manual_seed(0))
    assert torch.equal(masked, items != PAD)


def test_pretraining_loss_decreases(habits):
    cfg, net, data, _ = training_setup(habits)
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    losses = [pretrain_epoch(net, data, optimizer, cfg.batch_size, 0.3, rng, gen) for _ in range(6)]
    assert losses[-1] < 0.8 * losses[0], losses


def test_fgsm_step_perturbs_real_events_within_eps_and_leaves_the_whole_objectives_gradients(habits):
    cfg, net, data, ck = training_setup(habits)
    codes, q, targets = window_batch(data, np.arange(8), cfg, ck.vocab.lat, ck.vocab.lon)
    real = codes["items"] != PAD
    shape = (*codes["items"].shape, cfg.hidden)
    loss, delta = fgsm_backward(lambda d: next_item_loss(net, codes, q, targets, d), shape, 0.05, real, 0.5)
    torch.testing.assert_close(loss, next_item_loss(net, codes, q, targets))  # the clean loss (no dropout)
    zero = torch.zeros(shape, requires_grad=True)
    (gradient,) = torch.autograd.grad(next_item_loss(net, codes, q, targets, zero), zero)
    torch.testing.assert_close(delta, 0.05 * gradient.sign() * real.unsqueeze(-1))
    # The gradients it leaves are those of the whole objective, clean + 0.5 * adversarial.
    accumulated = {name: p.grad.clone() for name, p in net.named_parameters() if p.grad is not None}
    net.zero_grad(set_to_none=True)
    (next_item_loss(net, codes, q, targets) + 0.5 * next_item_loss(net, codes, q, targets, delta)).backward()
    expected = {name: p.grad for name, p in net.named_parameters() if p.grad is not None}
    assert accumulated.keys() == expected.keys() and len(expected) > 10
    for name, grad in expected.items():
        torch.testing.assert_close(accumulated[name], grad)
    assert delta.abs().max() <= 0.05 + 1e-7
    assert (delta[real].abs() > 0).any() and (delta[~real] == 0).all()
    clean, _, _ = net.encode(codes, causal=True)
    perturbed, _, _ = net.encode(codes, causal=True, delta=delta)
    change = (perturbed - clean).abs()
    assert change.max() <= 0.05 + 1e-6 and change[real].max() > 0
    # To first order the step is the worst case: the loss goes up.
    net.eval()
    with torch.no_grad():
        assert next_item_loss(net, codes, q, targets, delta) > next_item_loss(net, codes, q, targets)


def test_an_epoch_with_a_window_budget_trains_that_many_distinct_windows_drawn_anew(habits, monkeypatch):
    import trainer.model.finetune as finetune

    cfg, net, data, ck = training_setup(habits, epoch_windows=10)
    assert len(data) > 20
    seen: list[list[int]] = []
    batch = finetune.window_batch
    monkeypatch.setattr(finetune, "window_batch", lambda d, w, *a: seen[-1].extend(w.tolist()) or batch(d, w, *a))
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    rng = np.random.default_rng(0)
    for _ in range(2):
        seen.append([])
        finetune.finetune_epoch(net, data, optimizer, cfg, ck.vocab.lat, ck.vocab.lon, rng)
    assert [len(s) for s in seen] == [10, 10] and all(len(set(s)) == 10 for s in seen)
    assert set(seen[0]) != set(seen[1])
    seen.append([])
    finetune.finetune_epoch(net, data, optimizer, cfg.replace(epoch_windows=0), ck.vocab.lat, ck.vocab.lon, rng)
    assert sorted(seen[-1]) == list(range(len(data)))  # 0: every window


def test_a_pretraining_epoch_with_a_window_budget_trains_that_many_windows(habits, monkeypatch):
    import trainer.model.pretrain as pretrain

    cfg, net, data, _ = training_setup(habits)
    rows: list[int] = []
    mask = pretrain.mask_positions
    monkeypatch.setattr(pretrain, "mask_positions", lambda items, *a: rows.append(len(items)) or mask(items, *a))
    optimizer = torch.optim.AdamW(net.parameters(), lr=cfg.lr)
    rng, gen = np.random.default_rng(0), torch.Generator().manual_seed(0)
    pretrain_epoch(net, data, optimizer, 4, 0.3, rng, gen, windows=10)
    assert rows == [4, 4, 2]
    rows.clear()
    pretrain_epoch(net, data, optimizer, 4, 0.3, rng, gen)
    assert sum(rows) == len(data) > 10
