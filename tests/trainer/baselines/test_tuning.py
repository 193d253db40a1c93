import numpy as np
import pytest

from tests.trainer.synthetic import random_frame
from trainer.baselines import MarkovFrequency, SpatioTemporalHeuristic, tuning
from trainer.baselines.tuning import best_weights, chunk_rows, validation_batch
from trainer.batches import HistoryBatch
from trainer.data import UNK, from_frame

GRID = {"power": (0.5, 1.0, 2.0)}
MIXES = [(1.0, 0.0), (0.5, 0.5), (0.0, 1.0)]


def _batch():
    ck, split = from_frame(random_frame(n_events=800, n_users=8, n_items=7))
    batch = validation_batch(ck, split, max_len=3, n_targets=40)
    assert batch is not None and len(batch) > 10
    batch.targets = batch.targets % 9
    batch.target_index = np.arange(len(batch))  # one seed per row
    return batch


def test_chunked_search_equals_the_search_over_all_rows_at_once():
    batch = _batch()
    row_bytes = tuning.SCORE_BYTES * 9
    whole_seen, chunk_seen = [], []
    whole_parts, chunk_parts = _parts_seeded_per_row(whole_seen), _parts_seeded_per_row(chunk_seen)
    whole = best_weights(whole_parts, GRID, batch, MIXES, n_items=9, budget_bytes=row_bytes * len(batch))
    chunked = best_weights(chunk_parts, GRID, batch, MIXES, n_items=9, budget_bytes=row_bytes * 3)
    assert whole == chunked
    assert whole_seen == [len(batch)]
    assert max(chunk_seen) == 3 and sum(chunk_seen) == len(batch)


def _parts_seeded_per_row(seen: list[int]):
    """Two score matrices per chunk, one depending on the parameter; each row's scores come from its own seed,
    so how the rows are chunked cannot change them."""

    def parts_of(chunk):
        seen.append(len(chunk))
        base = np.stack([np.random.default_rng(int(i)).random(9) for i in chunk.target_index])
        fixed = np.zeros_like(base)
        fixed[np.arange(len(chunk)), chunk.targets] = 0.3
        return lambda p: (base ** p["power"], fixed)

    return parts_of


def test_chunks_keep_each_score_matrix_within_the_budget():
    assert chunk_rows(50_000, budget_bytes=64 * 2**20) == 167  # 167 x 50,000 x 8 bytes <= 64 MB
    assert chunk_rows(10**9, budget_bytes=1) == 1


@pytest.mark.parametrize("model", [MarkovFrequency(tune_targets=60), SpatioTemporalHeuristic(tune_targets=60)])
def test_heuristics_choose_the_same_weights_in_small_chunks(model, monkeypatch):
    ck, split = from_frame(random_frame(n_events=900, n_users=6, n_items=15))
    model.fit(ck, split)
    chosen = (getattr(model, "alpha", None), getattr(model, "params", None), getattr(model, "weights", None))
    monkeypatch.setattr(tuning, "CHUNK_BYTES", tuning.SCORE_BYTES * ck.vocab.n_items * 7)  # 7 rows a chunk
    chunks = []
    slice_rows = HistoryBatch.slice_rows

    def recording(self, lo, hi):
        chunk = slice_rows(self, lo, hi)
        chunks.append(len(chunk))
        return chunk

    monkeypatch.setattr(HistoryBatch, "slice_rows", recording)
    model.fit(ck, split)
    assert len(chunks) > 5 and max(chunks) == 7 and sum(chunks) == model.tune_targets
    assert (getattr(model, "alpha", None), getattr(model, "params", None), getattr(model, "weights", None)) == chosen


def test_the_search_picks_the_parameters_and_mix_of_the_highest_mrr():
    batch = _batch()
    perfect = np.zeros((len(batch), 9))
    perfect[np.arange(len(batch)), batch.targets] = 1.0  # ranks every target first
    worst = 1.0 - perfect  # ranks every target last

    def parts_of(chunk):
        rows = slice(int(chunk.target_index[0]), int(chunk.target_index[-1]) + 1)
        # The first part is right only at power 1: the best is (power 1, that part alone), neither end of the grid.
        return lambda p: (perfect[rows] if p["power"] == 1.0 else worst[rows], worst[rows])

    params, mix, mrr = best_weights(parts_of, GRID, batch, MIXES, n_items=9)
    assert (params, mix, mrr) == ({"power": 1.0}, (1.0, 0.0), 1.0)


def test_tuning_samples_validation_events_only():
    ck, split = from_frame(random_frame(n_events=800, n_users=8, n_items=7))
    batch = validation_batch(ck, split, max_len=3, n_targets=10_000)
    assert set(batch.target_index) == set(np.flatnonzero(split.val & (ck.item > UNK)))
