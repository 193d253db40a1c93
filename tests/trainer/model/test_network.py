import numpy as np
import pytest
import torch

from tests.trainer.conftest import tiny_config
from trainer.data import PAD, UNK
from trainer.model.codes import CellVocab
from trainer.model.inputs import Histories, history_codes, last_position_queries, queries
from trainer.model.network import ClickcastNet, attention_mask

N_ITEMS = 20


def random_histories(n=4, length=12, seed=0) -> Histories:
    rng = np.random.default_rng(seed)
    items = rng.integers(2, N_ITEMS, (n, length))
    items[0, :5] = PAD  # a short history
    items[1, 3] = UNK
    ts = np.cumsum(rng.uniform(60, 86400, (n, length)), axis=1) + 1.35e9
    lat = rng.uniform(40.6, 40.8, (n, length)).astype(np.float32)
    lon = rng.uniform(-74.0, -73.8, (n, length)).astype(np.float32)
    ts[items == PAD], lat[items == PAD], lon[items == PAD] = 0, 0, 0
    return Histories(items=items, ts=ts, lat=lat, lon=lon)


def build(**changes):
    torch.manual_seed(0)
    cfg = tiny_config(**changes)
    h = random_histories(length=cfg.max_len)
    cells = CellVocab.build(h.lat[h.items != PAD], h.lon[h.items != PAD], cfg.geohash_precision)
    net = ClickcastNet(cfg, N_ITEMS, len(cells)).eval()
    item_lat, item_lon = np.linspace(40.6, 40.8, N_ITEMS), np.linspace(-74.0, -73.8, N_ITEMS)
    return cfg, net, cells, h, item_lat, item_lon


@pytest.mark.parametrize("use_repeat", [True, False])
def test_next_item_is_a_distribution_over_known_items(use_repeat):
    cfg, net, cells, h, item_lat, item_lon = build(use_repeat=use_repeat)
    q = last_position_queries(h, cfg, item_lat, item_lon)
    with torch.no_grad():
        _, memory, states = net.encode(history_codes(h, cells, cfg), causal=True)
        hq = states[q.rows, q.cols]
        log_p = net.next_item(memory, hq, torch.from_numpy(h.items), q.rows, q.cols, q.pairs, q.item_dist)
    assert log_p.shape == (len(h.items), N_ITEMS)
    assert torch.isinf(log_p[:, [PAD, UNK]]).all()
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(len(h.items)))


def test_target_path_equals_the_full_distribution_at_the_target():
    cfg, net, cells, h, item_lat, item_lon = build()
    q = last_position_queries(h, cfg, item_lat, item_lon)
    targets = torch.tensor([int(h.items[0, -1]), 3, int(h.items[2, 5]), 19])  # repeats and a new item
    with torch.no_grad():
        _, memory, states = net.encode(history_codes(h, cells, cfg), causal=True)
        args = (memory, states[q.rows, q.cols], torch.from_numpy(h.items), q.rows, q.cols, q.pairs, q.item_dist)
        full = net.next_item(*args)
        at_target = net.next_item(*args, targets=targets)
    torch.testing.assert_close(at_target, full.gather(1, targets[:, None]).squeeze(1))


def test_causal_prediction_ignores_later_events():
    cfg, net, cells, h, item_lat, item_lon = build()
    changed = Histories(items=h.items.copy(), ts=h.ts.copy(), lat=h.lat.copy(), lon=h.lon.copy())
    changed.items[:, 8:] = 7
    changed.lat[:, 8:] += 0.05
    rows, cols = np.arange(4), np.full(4, 7)
    out = []
    for hist in (h, changed):
        q = queries(hist, rows, cols, cfg, item_lat, item_lon)
        with torch.no_grad():
            _, memory, states = net.encode(history_codes(hist, cells, cfg), causal=True)
            hq = states[q.rows, q.cols]
            out.append(net.next_item(memory, hq, torch.from_numpy(hist.items), q.rows, q.cols, q.pairs, q.item_dist))
    torch.testing.assert_close(out[0], out[1])
    # ... while the newest position does see them.
    q = last_position_queries(h, cfg, item_lat, item_lon)
    with torch.no_grad():
        _, _, a = net.encode(history_codes(h, cells, cfg), causal=True)
        _, _, b = net.encode(history_codes(changed, cells, cfg), causal=True)
    assert not torch.allclose(a[:, -1], b[:, -1])


@pytest.mark.parametrize("training", [False, True])
def test_encode_equals_the_bert_model_forward(training):
    """encode calls BertModel's embeddings and layers directly; a transformers upgrade must not change a bit."""
    cfg, net, cells, h, *_ = build(layers=2, dropout=0.2)
    codes = {name: c[:, 2:] for name, c in history_codes(h, cells, cfg).items()}  # as if trimmed: column 0 = position 2
    net.train(training)
    torch.manual_seed(1)  # the same dropout masks for both
    x, _, states = net.encode(codes, causal=True, first_position=2)
    torch.manual_seed(1)
    mask = attention_mask(codes["items"] != PAD, causal=True)
    positions = torch.arange(2, cfg.max_len)[None, :]
    reference = net.encoder(inputs_embeds=x, attention_mask=mask, position_ids=positions).last_hidden_state
    assert torch.equal(states, reference)


@pytest.mark.parametrize("layers", [1, 2])
def test_newest_state_alone_equals_the_full_encoding(layers):
    """Serving runs the last layer at the newest column only; the other columns' states are never used."""
    cfg, net, cells, h, *_ = build(layers=layers)
    codes = {name: c[:, 3:] for name, c in history_codes(h, cells, cfg).items()}  # trimmed: column 0 = position 3
    with torch.no_grad():
        _, memory, states = net.encode(codes, causal=True, first_position=3)
        newest_memory, newest = net.encode_newest(codes, first_position=3)
    assert torch.equal(newest_memory, memory)
    torch.testing.assert_close(newest, states[:, -1], rtol=1e-5, atol=1e-6)


def test_scoring_embedding_sum_equals_the_training_path_and_follows_updates():
    cfg, net, cells, h, *_ = build()
    codes = history_codes(h, cells, cfg)
    for _ in range(2):
        with torch.no_grad():
            fused = net.embed(codes)
        plain = net.embed(codes).detach()  # grad enabled: one lookup per table
        torch.testing.assert_close(fused, plain, rtol=1e-6, atol=1e-6)
        with torch.no_grad():  # an optimizer step changes the tables in place: the cached stack must follow
            net.embed.codes["gap"].weight.add_(0.5)
            net.embed.items.item.weight.mul_(2.0)


def test_masked_items_leave_no_trace_of_where_they_were():
    """Pre-training's cloze: moving a masked event elsewhere changes no input embedding (item, cell and the
    hops into and out of it are hidden), while an unmasked move does."""
    cfg, net, cells, h, *_ = build()
    moved = Histories(items=h.items, ts=h.ts, lat=h.lat.copy(), lon=h.lon.copy())
    moved.lat[:, 6] += 0.05
    masked = torch.zeros(h.items.shape, dtype=torch.bool)
    masked[:, 6] = True
    with torch.no_grad():
        before = net.embed(history_codes(h, cells, cfg), masked)
        after = net.embed(history_codes(moved, cells, cfg), masked)
        assert torch.equal(before, after)
        unmasked = torch.zeros_like(masked)
        assert not torch.equal(
            net.embed(history_codes(h, cells, cfg), unmasked), net.embed(history_codes(moved, cells, cfg), unmasked)
        )


def test_attention_mask_hides_padding_and_the_future():
    real = torch.tensor([[False, True, True]])
    allowed = attention_mask(real, causal=True)[0, 0] == 0
    expected = torch.tensor([[False, False, False], [False, True, False], [False, True, True]])
    assert torch.equal(allowed, expected)
    allowed = attention_mask(real, causal=False)[0, 0] == 0
    assert torch.equal(allowed, torch.tensor([[False, True, True]] * 3))


def test_trimming_leading_padding_leaves_the_prediction_unchanged():
    """Serving drops columns that are padding in every row (short histories); positions keep their index."""
    from trainer.model.bundle import ClickcastModel
    from trainer.model.inputs import trim_padding

    cfg, net, cells, h, item_lat, item_lon = build()
    short = Histories(items=h.items.copy(), ts=h.ts.copy(), lat=h.lat.copy(), lon=h.lon.copy())
    short.items[:, :4] = PAD  # every row starts with 4 padding columns
    short.ts[:, :4], short.lat[:, :4], short.lon[:, :4] = 0, 0, 0
    trimmed, first = trim_padding(short)
    assert first == 4 and trimmed.items.shape[1] == cfg.max_len - 4

    model = ClickcastModel(cfg, net, cells, [f"i{k}" for k in range(N_ITEMS)], item_lat, item_lon)
    q = last_position_queries(short, cfg, item_lat, item_lon)
    with torch.no_grad():
        _, memory, states = net.encode(history_codes(short, cells, cfg), causal=True)
        hq = states[q.rows, q.cols]
        untrimmed = net.next_item(memory, hq, torch.from_numpy(short.items), q.rows, q.cols, q.pairs, q.item_dist)
    torch.testing.assert_close(model.log_probs(short), untrimmed, rtol=1e-5, atol=1e-5)
    assert trim_padding(h)[1] == 0  # a full row keeps every column


@pytest.mark.parametrize("layers", [1, 2])
def test_a_cold_users_scores_do_not_depend_on_its_batch(layers):
    """A history without events is scored as a cold user (eval); alone it is trimmed to one column, beside a
    full history it keeps them all, and both must give the same scores."""
    from trainer.model.bundle import ClickcastModel

    cfg, net, cells, h, item_lat, item_lon = build(layers=layers)
    with torch.no_grad():  # weights far from their initial values make any dependence visible
        for p in net.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    model = ClickcastModel(cfg, net, cells, [f"i{k}" for k in range(N_ITEMS)], item_lat, item_lon)
    empty = lambda a: np.zeros_like(a[:1])  # noqa: E731
    cold = Histories(items=empty(h.items), ts=empty(h.ts), lat=empty(h.lat), lon=empty(h.lon))
    beside = Histories(
        items=np.concatenate([cold.items, h.items[2:3]]),
        ts=np.concatenate([cold.ts, h.ts[2:3]]),
        lat=np.concatenate([cold.lat, h.lat[2:3]]),
        lon=np.concatenate([cold.lon, h.lon[2:3]]),
    )
    torch.testing.assert_close(model.log_probs(cold)[0], model.log_probs(beside)[0], rtol=1e-5, atol=1e-5)


def test_item_distance_memo_equals_direct_codes():
    from trainer.model.codes import ItemDistanceMemo, item_distance_codes

    cfg, _, _, h, item_lat, item_lon = build()
    three_rows = 3 * len(item_lat)  # the budget holds the rows of three positions
    memo = ItemDistanceMemo(item_lat, item_lon, cfg, budget_bytes=three_rows)
    assert memo.limit == 3
    for lat, lon in ((h.lat[:, -1], h.lon[:, -1]), (h.lat[:, 2], h.lon[:, 2]), (h.lat[:, -1], h.lon[:, -1])):
        np.testing.assert_array_equal(memo.lookup(lat, lon), item_distance_codes(lat, lon, item_lat, item_lon, cfg))
        assert len(memo._rows) <= 3
    # A call with more positions than the memo holds, some of them remembered before.
    memo = ItemDistanceMemo(item_lat, item_lon, cfg, budget_bytes=three_rows)
    lat, lon = h.lat[:, -1], h.lon[:, -1]
    memo.lookup(lat[:2], lon[:2])
    np.testing.assert_array_equal(
        memo.lookup(lat[1:], lon[1:]), item_distance_codes(lat[1:], lon[1:], item_lat, item_lon, cfg)
    )


def test_item_distance_memo_evicts_the_least_recently_used_position():
    from trainer.model.codes import ItemDistanceMemo

    cfg, _, _, _, item_lat, item_lon = build()
    memo = ItemDistanceMemo(item_lat, item_lon, cfg, budget_bytes=2 * len(item_lat))
    a, b, c = (np.array([40.70 + i / 100]) for i in range(3))
    lon = np.array([-74.0])
    memo.lookup(a, lon)
    memo.lookup(b, lon)
    memo.lookup(a, lon)  # a is now the most recently used
    memo.lookup(c, lon)
    assert set(memo._rows) == {(float(a[0]), -74.0), (float(c[0]), -74.0)}


def test_joined_item_ids_fill_the_newest_columns():
    """The Triton contract: one string of space-joined ids per history, right-aligned; unseen ids are UNK."""
    from trainer.model.bundle import ClickcastModel

    cfg, net, cells, _, item_lat, item_lon = build()
    model = ClickcastModel(
        cfg, net, cells, ["<pad>", "<unk>", *(f"i{k}" for k in range(2, N_ITEMS))], item_lat, item_lon
    )
    got = model.joined_item_indices(["i2 i3 i19", "", "i5 nope"], 5)
    np.testing.assert_array_equal(got, [[0, 0, 2, 3, 19], [0, 0, 0, 0, 0], [0, 0, 0, 5, UNK]])
    with pytest.raises(ValueError, match="does not fit"):
        model.joined_item_indices(["i2 i3 i4"], 2)
