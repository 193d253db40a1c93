"""Non-neural next-item baselines, each a `trainer.recommender.Recommender`, one per module."""

from trainer.baselines.markov import Markov
from trainer.baselines.markov_frequency import MarkovFrequency
from trainer.baselines.nearest import NearestDistance
from trainer.baselines.popular import MostPopular
from trainer.baselines.spatio_temporal import SpatioTemporalHeuristic
from trainer.baselines.user_frequency import UserFrequency


def all_baselines() -> list:
    """Fresh instances of every baseline, in the order the report lists them."""
    return [MostPopular(), UserFrequency(), Markov(), MarkovFrequency(), NearestDistance(), SpatioTemporalHeuristic()]


__all__ = [
    "Markov",
    "MarkovFrequency",
    "MostPopular",
    "NearestDistance",
    "SpatioTemporalHeuristic",
    "UserFrequency",
    "all_baselines",
]
