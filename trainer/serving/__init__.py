"""Serving the clickcast model from Triton: export to a model repository (`export`) and the python-backend model
(`triton_model`). Nothing is imported here: an exported version's `model.py` imports `trainer.serving.graph` from
its own code snapshot, which holds `trainer`, `features` and `schemas` only, so this package must not pull in the
exporter (and through it `deploy` and `streams`, which come from wherever the project is installed)."""
