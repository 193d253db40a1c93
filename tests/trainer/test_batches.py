import itertools

import numpy as np

from tests.trainer.synthetic import frame, random_frame
from trainer.batches import history_batches, training_sequences
from trainer.data import PAD, from_frame


def test_histories_hold_only_earlier_events_of_the_same_user():
    ck, split = from_frame(random_frame(n_events=600, n_users=7))
    rows = 0
    for batch in history_batches(ck, split.test | split.val, max_len=20, batch_size=16):
        for r, target in enumerate(batch.target_index):
            user = ck.user[target]
            earlier = np.flatnonzero((ck.user == user) & (np.arange(len(ck)) < target))[-20:]
            real = batch.items[r] != PAD
            assert real.sum() == len(earlier)
            assert np.array_equal(batch.items[r][real], ck.item[earlier])  # oldest .. newest, right-aligned
            assert np.all(batch.ts[r][real] <= ck.ts[target])
            assert np.all(batch.ts[r][~real] == 0) and np.all(batch.lat[r][~real] == 0)
            assert real[-1] or not real.any()  # left-padded
            assert batch.users[r] == user and batch.targets[r] == ck.item[target]
            rows += 1
    assert rows == (split.test | split.val).sum()


def test_cold_user_gets_an_all_pad_row_and_is_kept():
    ck, split = from_frame(frame([("u1", "a", t) for t in range(9)] + [("u2", "a", 9)]))
    (batch,) = list(history_batches(ck, split.test, max_len=4, batch_size=8))
    assert batch.items.tolist() == [[PAD] * 4]


def test_history_dtypes_and_shapes():
    ck, split = from_frame(random_frame())
    batch = next(history_batches(ck, split.test, max_len=5, batch_size=3))
    assert batch.items.shape == (3, 5) and batch.items.dtype == np.int64
    assert batch.ts.dtype == np.float64 and batch.lat.dtype == np.float32
    assert batch.targets.shape == (3,)


def test_training_windows_cover_every_consecutive_pair_once_in_the_mask():
    ck, split = from_frame(random_frame(n_events=500, n_users=5))
    windows = training_sequences(ck, split.train, max_len=8)
    assert np.all(split.train[windows.event_index[windows.event_index >= 0]])
    pairs = set()
    for row in windows.event_index:
        real = row[row >= 0]
        assert len(real) >= 2 and np.all(np.diff(real) > 0) and len(set(ck.user[real])) == 1
        pairs |= set(zip(real[:-1].tolist(), real[1:].tolist(), strict=True))
    expected = set()
    for u in range(ck.n_users):
        seq = np.flatnonzero(split.train & (ck.user == u)).tolist()
        expected |= set(itertools.pairwise(seq))
    assert pairs == expected
