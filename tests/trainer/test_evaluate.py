import numpy as np
import pytest

from tests.trainer.synthetic import random_frame
from trainer.data import UNK, from_frame
from trainer.evaluate import rank_events


class Oracle:
    """Cheats with the target (to test the evaluator, not a model)."""

    name = "oracle"

    def __init__(self, ck):
        self.ck = ck

    def fit(self, ck, split, progress=None):
        pass

    def score(self, batch):
        scores = np.zeros((len(batch), self.ck.vocab.n_items), dtype=np.float32)
        scores[np.arange(len(batch)), batch.targets] = 1.0
        return scores


class Constant(Oracle):
    name = "constant"

    def score(self, batch):
        return np.ones((len(batch), self.ck.vocab.n_items), dtype=np.float32)


@pytest.fixture(scope="module")
def data():
    return from_frame(random_frame(n_events=800, n_items=60))


def test_oracle_hits_everything_except_unseen_items(data):
    ck, split = data
    ranked = rank_events(Oracle(ck), ck, split, "test", max_len=5, batch_size=7)
    result = ranked.metrics()
    known_share = np.mean(ck.item[split.test] != UNK)
    assert result["events"] == split.test.sum()
    assert result["acc@1"] == pytest.approx(known_share) and result["mrr"] == pytest.approx(known_share)
    assert ranked.users.tolist() == ck.user[split.test].tolist()  # each rank's user, in the split's time order


def test_constant_scorer_gets_the_worst_rank(data):
    ck, split = data
    result = rank_events(Constant(ck), ck, split, "val", max_len=5).metrics()
    n_known = ck.vocab.n_items - 2
    known_share = np.mean(ck.item[split.val] != UNK)
    assert result["acc@10"] == 0.0
    assert result["mrr"] == pytest.approx(known_share / n_known)


def test_transform_sees_every_batch_and_unknown_split_is_rejected(data):
    ck, split = data
    seen = []
    rank_events(Oracle(ck), ck, split, "test", max_len=5, batch_size=16, transform=lambda b: seen.append(len(b)) or b)
    assert sum(seen) == split.test.sum()
    with pytest.raises(ValueError):
        rank_events(Oracle(ck), ck, split, "holdout")


def test_limit_scores_only_the_first_events_of_the_split(data):
    ck, split = data
    seen = []
    result = rank_events(
        Oracle(ck), ck, split, "test", max_len=5, limit=9, transform=lambda b: seen.append(b) or b
    ).metrics()
    assert result["events"] == 9
    assert [int(i) for b in seen for i in b.target_index] == np.flatnonzero(split.test)[:9].tolist()
