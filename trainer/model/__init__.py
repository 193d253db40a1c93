"""The clickcast transformer (and its SASRec-style plain variant): config, training, scoring, explanation."""

from trainer.model.config import ClickcastConfig
from trainer.model.recommender import ClickcastRecommender

__all__ = ["ClickcastConfig", "ClickcastRecommender"]
