import numpy as np

from tests.trainer.synthetic import random_frame
from trainer.batches import history_batches
from trainer.data import PAD, UNK, from_frame
from trainer.robustness import corrupt_batch, noise_transform


def batch_and_vocab():
    ck, split = from_frame(random_frame(n_events=600, n_items=200))
    return next(history_batches(ck, split.test, max_len=30, batch_size=40)), ck.vocab


def test_replaces_a_tenth_of_real_events_with_known_items_at_their_positions_keeping_time():
    batch, vocab = batch_and_vocab()
    before = batch.items.copy()
    noisy = corrupt_batch(batch, vocab, np.random.default_rng(0), 0.1)
    real = before != PAD
    changed_slots = noisy.items != before
    assert np.array_equal(batch.items, before)  # the input batch is untouched
    assert np.array_equal(noisy.items != PAD, real)  # padding stays padding
    # a replacement may draw the same item by chance, so at most (and nearly) 10% differ
    assert round(0.1 * real.sum()) - 3 <= changed_slots.sum() <= round(0.1 * real.sum())
    new = noisy.items[changed_slots]
    assert np.all(new > UNK)
    assert np.allclose(noisy.lat[changed_slots], vocab.lat[new].astype(np.float32))
    assert np.allclose(noisy.lon[changed_slots], vocab.lon[new].astype(np.float32))
    assert np.array_equal(noisy.ts, batch.ts) and np.array_equal(noisy.targets, batch.targets)


def test_noise_is_reproducible_with_the_seed():
    batch, vocab = batch_and_vocab()
    a = noise_transform(vocab, seed=3)(batch).items
    b = noise_transform(vocab, seed=3)(batch).items
    c = noise_transform(vocab, seed=4)(batch).items
    assert np.array_equal(a, b) and not np.array_equal(a, c)
