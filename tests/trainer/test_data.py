import numpy as np
import pytest

from tests.trainer.synthetic import frame, random_frame
from trainer.data import PAD, UNK, ItemVocab, chronological_split, data_stats, drop_duplicate_events, from_frame


def test_split_proportions_and_chronology():
    ck, split = from_frame(random_frame(n_events=1000))
    assert (split.train.sum(), split.val.sum(), split.test.sum()) == (800, 100, 100)
    assert np.all(split.train.astype(int) + split.val + split.test == 1)
    assert ck.ts[split.train].max() <= ck.ts[split.val].min()
    assert ck.ts[split.val].max() <= ck.ts[split.test].min()
    assert np.all(np.diff(ck.ts) >= 0)


def test_split_rejects_bad_fractions():
    with pytest.raises(ValueError):
        chronological_split(10, 0.9, 0.2)


def test_unsorted_frame_is_sorted_first():
    f = random_frame(n_events=100).sample(frac=1.0, random_state=1)
    ck, _ = from_frame(f)
    assert np.all(np.diff(ck.ts) >= 0)


def test_vocab_from_train_only_and_unseen_items_are_unk():
    events = [("u1", "a", t) for t in range(8)] + [("u1", "b", 8), ("u2", "new", 9)]
    ck, _ = from_frame(frame(events, categories={"a": "Cafe"}))
    vocab = ck.vocab
    assert vocab.ids[:2] == ["<pad>", "<unk>"]
    assert vocab.ids[2:] == ["a"]  # b (val) and new (test) come after the training period
    assert list(ck.item) == [2] * 8 + [UNK, UNK]
    assert list(vocab.encode(["a", "b", "zzz"])) == [2, UNK, UNK]
    assert vocab.text == ["", "", "Cafe"]
    assert vocab.lat[2] == pytest.approx(40.75) and vocab.lat[PAD] == 0.0
    assert vocab.n_items == 3


def test_final_split_trains_on_validation_too_and_keeps_the_test_events():
    events = [("u1", "a", t) for t in range(8)] + [("u1", "b", 8), ("u2", "new", 9)]
    _, split = from_frame(frame(events))
    final_ck, final = from_frame(frame(events), final=True)
    assert np.array_equal(final.train, split.train | split.val) and not final.val.any()
    assert np.array_equal(final.test, split.test)
    assert final_ck.vocab.ids[2:] == ["a", "b"]  # b, first seen in validation, is known to the final fit
    assert list(final_ck.item) == [2] * 8 + [3, UNK]


def test_item_position_is_mean_of_training_events():
    f = frame([("u1", "a", 0), ("u1", "a", 1)] + [("u1", "c", t) for t in range(2, 10)])
    f.loc[1, "latitude"] = 40.76
    ck, _ = from_frame(f)
    assert ck.vocab.lat[ck.vocab.index["a"]] == pytest.approx((40.75 + 40.76) / 2)


def test_stats_count_unk_and_cold_users():
    events = [("u1", "a", t) for t in range(8)] + [("u1", "a", 8), ("u2", "new", 9)]
    ck, split = from_frame(frame(events))
    stats = data_stats(ck, split)
    assert stats["test_events"] == 1 and stats["test_unk_share"] == 1.0 and stats["test_cold_users_share"] == 1.0
    assert stats["val_unk_share"] == 0.0 and stats["val_cold_users_share"] == 0.0


def test_a_given_vocab_is_used_instead_of_the_training_one():
    ck, _ = from_frame(frame([("u1", "a", 0), ("u1", "b", 1)] * 5))
    saved = ItemVocab.from_ids(["<pad>", "<unk>", "b"], lat=np.zeros(3), lon=np.zeros(3))
    ck2, _ = from_frame(frame([("u1", "a", 0), ("u1", "b", 1)] * 5), vocab=saved)
    assert ck2.vocab is saved
    assert set(ck2.item.tolist()) == {UNK, 2} and ck.vocab.n_items == 4


def test_repeated_events_are_dropped_once_and_counted():
    events = frame([("u1", "a", 0), ("u1", "a", 0), ("u1", "a", 60), ("u2", "a", 0), ("u1", "b", 0), ("u1", "a", 0)])
    kept, dropped = drop_duplicate_events(events)
    assert dropped == 2
    assert list(zip(kept.user_id, kept.item_id, kept.ts, strict=True)) == [
        ("u1", "a", 0.0),
        ("u2", "a", 0.0),
        ("u1", "b", 0.0),
        ("u1", "a", 60.0),
    ]
    assert drop_duplicate_events(kept)[1] == 0
