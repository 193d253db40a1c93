import numpy as np
import pytest

from trainer import significance
from trainer.evaluate import EventRanks
from trainer.metrics import METRICS, metrics_from_ranks
from trainer.significance import gains_over, relative_gain


def ranked(ranks, users) -> EventRanks:
    return EventRanks(ranks=np.asarray(ranks, dtype=np.float64), users=np.asarray(users, dtype=np.int64), seconds=0.0)


def scorers(seed=0, n_users=200, per_user=20):
    """A baseline and a model that ranks each target one place higher, for every user alike."""
    rng = np.random.default_rng(seed)
    users = np.repeat(np.arange(n_users), per_user)
    base = rng.integers(1, 30, len(users)).astype(np.float64)
    return ranked(np.maximum(base - 1, 1), users), ranked(base, users)


def test_the_gain_is_the_ratio_of_the_two_scorers_metrics():
    model, base = scorers()
    gains = relative_gain(model, base, resamples=200)
    mine, theirs = metrics_from_ranks(model.ranks), metrics_from_ranks(base.ranks)
    for m in METRICS:
        assert gains[m]["gain"] == pytest.approx(mine[m] / theirs[m] - 1)
        assert gains[m]["low"] < gains[m]["gain"] < gains[m]["high"]
    assert gains["mrr"]["low"] > 0  # better on every user: the interval stays above zero


def test_the_same_scorer_gains_exactly_nothing():
    _, base = scorers()
    gains = relative_gain(base, base, resamples=100)
    assert all(gains[m] == {"gain": 0.0, "low": 0.0, "high": 0.0} for m in METRICS)


def test_a_gain_from_one_user_alone_is_not_sure_while_resampling_events_would_say_it_is():
    # Twenty users with 50 events each; the model is better for user 0 only, on every one of its events.
    users = np.repeat(np.arange(20), 50)
    base = np.full(len(users), 4.0)
    model = np.where(users == 0, 1.0, 4.0)
    gains = relative_gain(ranked(model, users), ranked(base, users), resamples=2000)
    assert gains["mrr"]["gain"] > 0.1
    assert gains["mrr"]["low"] == pytest.approx(0.0)  # draws without user 0 gain nothing
    # Treated as 1,000 independent events, the interval would exclude zero.
    events = relative_gain(ranked(model, np.arange(len(users))), ranked(base, np.arange(len(users))), resamples=2000)
    assert events["mrr"]["low"] > 0.05


def test_the_interval_is_the_percentiles_of_the_ratio_over_users_drawn_with_replacement():
    model, base = scorers(seed=5, n_users=30, per_user=7)
    gains = relative_gain(model, base, resamples=200, level=0.9, seed=11)
    # The same draws, the slow way: every drawn user's events, as often as the user is drawn.
    counts = np.random.default_rng(11).multinomial(30, np.full(30, 1 / 30), size=200)
    ratios = []
    for draw in counts:
        rows = np.concatenate([np.flatnonzero(base.users == u).repeat(c) for u, c in enumerate(draw) if c])
        ratios.append(metrics_from_ranks(model.ranks[rows])["mrr"] / metrics_from_ranks(base.ranks[rows])["mrr"] - 1)
    assert gains["mrr"]["low"] == pytest.approx(np.percentile(ratios, 5))
    assert gains["mrr"]["high"] == pytest.approx(np.percentile(ratios, 95))


def test_a_scorer_that_hits_nothing_has_no_ratio():
    users = np.arange(10) % 3
    gains = relative_gain(ranked(np.ones(10), users), ranked(np.full(10, np.inf), users), resamples=50)
    assert gains["mrr"] == {"gain": None, "low": None, "high": None}
    empty = ranked([], [])
    assert relative_gain(empty, empty)["acc@1"] == {"gain": None, "low": None, "high": None}


def test_intervals_do_not_depend_on_how_many_draws_are_held_at_once(monkeypatch):
    model, base = scorers(seed=3, n_users=50)
    whole = relative_gain(model, base, resamples=300)
    monkeypatch.setattr(significance, "DRAW_CELLS", 7 * 50)  # 7 draws at a time
    chunked = relative_gain(model, base, resamples=300)
    for m in METRICS:  # the same draws; only the sums' rounding differs
        assert chunked[m] == pytest.approx(whole[m], rel=1e-12)


def test_scorers_must_be_scored_on_the_same_events():
    model, base = scorers()
    with pytest.raises(ValueError, match="same events"):
        relative_gain(model, ranked(base.ranks, base.users[::-1]))


def test_gains_over_names_each_comparison_and_how_it_was_drawn():
    model, base = scorers()
    report = gains_over(model, {"heuristic": base, "itself": model})
    assert set(report["over"]) == {"heuristic", "itself"}
    assert report["unit"] == "user" and report["resamples"] == significance.RESAMPLES
