"""Serving the clickcast model from Triton: export to a model repository and the python-backend model."""

from trainer.serving.export import export_model

__all__ = ["export_model"]
