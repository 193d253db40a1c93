"""Non-neural next-item baselines, each a `trainer.recommender.Recommender`, one per module."""

from trainer.baselines.markov import Markov
from trainer.baselines.markov_frequency import MarkovFrequency
from trainer.baselines.nearest import NearestDistance
from trainer.baselines.popular import MostPopular
from trainer.baselines.spatio_temporal import SpatioTemporalHeuristic
from trainer.baselines.user_frequency import UserFrequency


def all_baselines(quick: bool = False) -> list:
    """Fresh instances of every baseline, in the order the report lists them (quick: tuned on fewer val events)."""
    tune = 1000 if quick else None
    return [
        MostPopular(),
        UserFrequency(),
        Markov(),
        MarkovFrequency(tune_targets=tune or 3000),
        NearestDistance(),
        SpatioTemporalHeuristic(tune_targets=tune or 2000),
    ]


__all__ = [
    "Markov",
    "MarkovFrequency",
    "MostPopular",
    "NearestDistance",
    "SpatioTemporalHeuristic",
    "UserFrequency",
    "all_baselines",
]
