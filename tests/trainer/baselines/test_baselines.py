import numpy as np
import pytest

from tests.trainer.synthetic import frame, random_frame
from trainer.baselines import (
    Markov,
    MarkovFrequency,
    MostPopular,
    NearestDistance,
    SpatioTemporalHeuristic,
    UserFrequency,
    all_baselines,
)
from trainer.baselines.common import PastVisits, Transitions
from trainer.baselines.markov_frequency import ALPHAS
from trainer.baselines.tuning import best_weights, validation_batch
from trainer.batches import history_batches
from trainer.data import UNK, from_frame
from trainer.metrics import RankAccumulator, target_ranks
from trainer.recommender import Recommender

DAY = 86400.0


def only_batch(ck, mask, max_len=5):
    (batch,) = list(history_batches(ck, mask, max_len=max_len, batch_size=10_000))
    return batch


def top(scores, ck, row=0):
    return ck.vocab.ids[int(np.argmax(scores[row]))]


def test_most_popular_ranks_training_counts():
    events = [("u1", "a", 0), ("u2", "a", 1), ("u3", "a", 2), ("u1", "b", 3), ("u2", "b", 4), ("u1", "c", 5)]
    events += [("u9", "c", 6 + t) for t in range(4)]  # val/test: c becomes frequent, but only after training
    ck, split = from_frame(frame(events), train_frac=0.6, val_frac=0.1)
    model = MostPopular()
    model.fit(ck, split)
    scores = model.score(only_batch(ck, split.test))
    order = [ck.vocab.ids[i] for i in np.argsort(-scores[0])[:3]]
    assert order == ["a", "b", "c"]


def test_user_frequency_counts_all_earlier_events_but_not_the_target_or_later():
    # u1: a twice in train, then b three times in val, then test targets a, a, a, a.
    events = [("u1", "a", 0), ("u1", "a", 1), ("u2", "b", 2), ("u2", "c", 3), ("u2", "c", 4), ("u2", "c", 5)]
    events += [("u1", "b", 6), ("u1", "b", 7), ("u1", "b", 8), ("u1", "a", 9)]
    ck, split = from_frame(frame(events), train_frac=0.6, val_frac=0.3)
    model = UserFrequency()
    model.fit(ck, split)
    batch = only_batch(ck, split.test, max_len=1)  # the batch history holds only the newest event
    scores = model.score(batch)
    assert top(scores, ck) == "b"  # b: 3 visits before the target, a: 2 (the target's own visit not counted)
    assert scores[0, ck.vocab.index["c"]] < scores[0, ck.vocab.index["a"]]  # c: never visited by u1


def test_past_visits_exclude_target_and_later_events():
    ck, split = from_frame(random_frame(n_events=300, n_users=4))
    visits = PastVisits(ck)
    targets = np.flatnonzero(split.test)
    rows, events = visits.pairs(targets)
    assert np.all(events < targets[rows])
    assert np.all(ck.user[events] == ck.user[targets[rows]])
    expected = sum(int(np.sum((ck.user == ck.user[t]) & (np.arange(len(ck)) < t))) for t in targets)
    assert len(events) == expected


def test_markov_picks_the_only_successor():
    events = []
    for u in range(4):
        events += [(f"u{u}", "a", 10 * u), (f"u{u}", "c", 10 * u + 1), (f"u{u}", "b", 10 * u + 2)]
    events += [("u1", "b", 50), ("u5", "a", 60), ("u5", "b", 61), ("u5", "c", 62)]
    ck, split = from_frame(frame(events), train_frac=0.75, val_frac=0.0)
    model = Markov()
    model.fit(ck, split)
    batch = only_batch(ck, split.test)
    # test rows: u1 -> b, u5 -> a (cold), u5 -> b (last item a), u5 -> c; after a, training always went to c
    assert ck.vocab.ids[batch.items[2, -1]] == "a"
    assert top(model.score(batch), ck, row=2) == "c"


def test_transitions_are_row_normalised_within_users_only():
    events = [("u1", "a", 0), ("u1", "b", 1), ("u1", "a", 2), ("u1", "c", 3), ("u2", "d", 4)]
    ck, split = from_frame(frame(events * 1), train_frac=0.99, val_frac=0.0)
    trans = Transitions.from_train(ck, split)
    rows = trans.rows(ck.vocab.encode(["a", "c", "d"]))
    a_row = dict(zip(ck.vocab.ids, rows[0], strict=True))
    assert a_row["b"] == pytest.approx(0.5) and a_row["c"] == pytest.approx(0.5)
    assert rows[1].sum() == 0.0  # c -> d crosses users: not a transition


def test_markov_frequency_chooses_the_mix_that_scores_best_on_its_validation_sample():
    ck, split = from_frame(random_frame(n_events=600, n_users=6, n_items=15))
    model = MarkovFrequency(tune_targets=50)
    model.fit(ck, split)
    val = validation_batch(ck, split, max_len=1, n_targets=50)

    def validation_mrr(alpha: float) -> float:
        model.alpha = alpha
        ranks = RankAccumulator()
        ranks.add(model.score(val), val.targets)
        return ranks.result()["mrr"]

    chosen = model.alpha
    assert validation_mrr(chosen) == max(validation_mrr(a) for a in ALPHAS)
    model.alpha = chosen
    scores = model.score(only_batch(ck, split.test))
    assert scores.shape == (int(split.test.sum()), ck.vocab.n_items)


def test_nearest_distance_prefers_the_closest_item_to_the_last_position():
    events = [("u1", "a", 0), ("u2", "c", 1), ("u2", "d", 2), ("u3", "far", 3), ("u4", "b", 4)]
    events += [("u1", "c", 5), ("u9", "a", 6)]  # test: u1 last at a (b is 110 m away), u9 cold
    ck, split = from_frame(frame(events), train_frac=0.72, val_frac=0.0)
    model = NearestDistance()
    model.fit(ck, split)
    scores = model.score(only_batch(ck, split.test))
    assert top(scores, ck, row=0) == "a"
    second = ck.vocab.ids[int(np.argsort(-scores[0])[1])]
    assert second == "b"


def test_spatio_temporal_recency_prefers_recent_visits_with_a_short_horizon():
    events = [("u1", "a", t * 3600.0) for t in range(5)]  # a: 5 visits 60 days ago
    events += [("u1", "b", 60 * DAY + t * 3600.0) for t in range(2)]  # b: 2 visits today
    events += [("u2", "c", 61 * DAY), ("u1", "a", 61 * DAY + 1)]
    ck, split = from_frame(frame(events), train_frac=0.8, val_frac=0.0)
    model = SpatioTemporalHeuristic()
    model.fit(ck, split)
    model.weights = (1.0, 0.0, 0.0)
    batch = only_batch(ck, split.test)
    model.params = {"tau_days": 1.0, "sigma_hours": 1e6, "d0_km": 1.0}
    assert top(model.score(batch), ck, row=1) == "b"  # row 0 is u2, cold
    model.params = {"tau_days": 1e4, "sigma_hours": 1e6, "d0_km": 1.0}
    assert top(model.score(batch), ck, row=1) == "a"


def test_spatio_temporal_tunes_on_validation_and_scores_all_rows():
    ck, split = from_frame(random_frame(n_events=500, n_users=5, n_items=12))
    model = SpatioTemporalHeuristic(tune_targets=40)
    model.fit(ck, split)
    batch = only_batch(ck, split.test)
    scores = model.score(batch)
    assert np.all(np.isfinite(scores)) and scores.shape[0] == len(batch)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_spatio_temporal_settings_are_chosen_on_the_scores_it_gives(seed):
    """Every setting's validation MRR in the search equals the MRR of `score` with that setting: ties included (the
    search once left out the popularity tie-break, ranking a target tied with other places last)."""
    ck, split = from_frame(random_frame(n_events=600, n_users=6, n_items=15, seed=seed))
    model = SpatioTemporalHeuristic(tune_targets=60)
    model.fit(ck, split)
    val = validation_batch(ck, split, max_len=1, n_targets=60)
    for params in ({"tau_days": 7.0, "sigma_hours": 3.0, "d0_km": 0.5}, model.params):
        for mix in ((1.0, 0.0, 0.0), (1.0, 0.25, 0.02), model.weights):
            _, _, searched = best_weights(
                model._tuning_parts, {k: [v] for k, v in params.items()}, val, [mix], ck.vocab.n_items
            )
            model.params, model.weights = params, mix
            scored = RankAccumulator()
            scored.add(model.score(val), val.targets)
            assert scored.result()["mrr"] == pytest.approx(searched, abs=1e-12)


def test_tuned_heuristics_keep_their_defaults_when_validation_has_no_known_item():
    # Validation holds only places the training events never visited (a small file): nothing to tune on.
    events = [("u1", "a", 0), ("u1", "b", 10), ("u2", "a", 20), ("u2", "b", 30), ("u1", "a", 40), ("u2", "b", 50)]
    events += [("u1", "new1", 60), ("u2", "new2", 70)]
    ck, split = from_frame(frame(events), train_frac=0.75, val_frac=0.125)
    assert split.val.sum() == 1
    mixed, heuristic = MarkovFrequency(), SpatioTemporalHeuristic()
    defaults = (mixed.alpha, heuristic.params, heuristic.weights)
    mixed.fit(ck, split)
    heuristic.fit(ck, split)
    assert (mixed.alpha, heuristic.params, heuristic.weights) == defaults
    assert np.all(np.isfinite(heuristic.score(only_batch(ck, split.test))))


def test_every_baseline_is_a_recommender_scoring_every_known_target():
    ck, split = from_frame(random_frame(n_events=300))
    batch = only_batch(ck, split.test)
    for model in all_baselines():
        assert isinstance(model, Recommender)
        model.fit(ck, split)
        scores = model.score(batch)
        assert scores.shape == (len(batch), ck.vocab.n_items) and np.all(np.isfinite(scores))
        ranks = target_ranks(scores, batch.targets)
        # Only targets unseen in training miss; every known one gets a rank.
        assert np.array_equal(np.isinf(ranks), batch.targets <= UNK), model.name


def test_popularity_orders_places_the_main_signal_leaves_tied():
    # a and b: popular places with 100 and 101 training visits. u1 went x -> a and x -> b, once each, so the
    # user's frequency and Markov from x score them equal; the one-visit popularity difference must order them.
    events = [("u2", "a", t) for t in range(100)] + [("u3", "b", 100 + t) for t in range(101)]
    events += [("u1", "x", 300), ("u1", "a", 301), ("u1", "x", 302), ("u1", "b", 303), ("u1", "x", 304)]
    events += [("u1", "b", 400)]
    ck, split = from_frame(frame(events), train_frac=0.995, val_frac=0.0)
    batch = only_batch(ck, split.test)
    assert ck.vocab.ids[batch.items[-1, -1]] == "x"  # the last test row: x, then the target
    a, b = ck.vocab.index["a"], ck.vocab.index["b"]
    for model in (UserFrequency(), Markov(), MarkovFrequency()):
        model.fit(ck, split)
        scores = model.score(batch)
        assert scores[-1, b] > scores[-1, a], model.name
