import math

import numpy as np
import pytest

from trainer.data import PAD, UNK
from trainer.metrics import METRICS, RankAccumulator, metrics_from_ranks, target_ranks


def test_ranks_count_only_known_items_and_break_ties_pessimistically():
    scores = np.array(
        [
            [9.0, 9.0, 0.5, 0.3, 0.1, 0.0],  # PAD/UNK columns are ignored even when high
            [0.0, 0.0, 0.2, 0.2, 0.2, 0.1],  # three-way tie: the target ranks last among them
            [0.0, 0.0, 1.0, 1.0, 1.0, 1.0],  # constant scorer: worst rank
            [0.0, 0.0, 0.1, 0.2, 0.3, 0.4],
            [0.0, 0.0, 0.1, 0.2, 0.3, 0.4],
        ],
        dtype=np.float32,
    )
    targets = np.array([2, 3, 4, UNK, PAD])
    ranks = target_ranks(scores, targets)
    assert ranks[:3].tolist() == [1.0, 3.0, 4.0]
    assert np.isinf(ranks[3]) and np.isinf(ranks[4])


def test_nan_score_is_the_worst_rank():
    ranks = target_ranks(np.array([[0, 0, np.nan, 0.1, 0.2]]), np.array([2]))
    assert ranks.tolist() == [3.0]


def test_other_items_scored_nan_rank_above_the_target():
    ranks = target_ranks(np.array([[0, 0, np.nan, np.nan, 0.1, 0.2]]), np.array([4]))
    assert ranks.tolist() == [4.0]  # the two NaN items and the higher 0.2 come first


def test_metric_values_are_exact():
    m = metrics_from_ranks(np.array([1.0, 2.0, 7.0, 11.0, np.inf]))
    assert m["acc@1"] == pytest.approx(1 / 5)
    assert m["acc@5"] == pytest.approx(2 / 5)
    assert m["acc@10"] == pytest.approx(3 / 5)
    assert m["ndcg@10"] == pytest.approx((1.0 + 1 / math.log2(3) + 1 / math.log2(8)) / 5)
    assert m["mrr"] == pytest.approx((1 + 1 / 2 + 1 / 7 + 1 / 11 + 0) / 5)


def test_ranks_at_each_cutoff_count_and_the_next_ones_do_not():
    m = metrics_from_ranks(np.array([5.0, 6.0, 10.0, 11.0]))
    assert (m["acc@1"], m["acc@5"], m["acc@10"]) == (0.0, 1 / 4, 3 / 4)
    assert m["ndcg@10"] == pytest.approx((1 / math.log2(6) + 1 / math.log2(7) + 1 / math.log2(11)) / 4)


def test_no_events_score_zero_not_nan():
    assert metrics_from_ranks(np.array([])) == dict.fromkeys(METRICS, 0.0)


def test_accumulator_joins_batches():
    acc = RankAccumulator()
    acc.add(np.array([[0, 0, 1.0, 0.0]]), np.array([2]))
    acc.add(np.array([[0, 0, 1.0, 0.0]]), np.array([3]))
    assert acc.ranks.tolist() == [1.0, 2.0]
    assert acc.result()["mrr"] == pytest.approx(0.75)
