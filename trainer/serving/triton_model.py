"""Triton python-backend model for clickcast; `export_model` copies this file into each version as model.py.

It loads the model files of its own version folder and scores raw histories with the trainer's own code
(`trainer.model`, `features`), from the snapshot the export put in `code/` next to this file, so online scores
equal offline ones and later code changes do not affect this version. All requests of a dynamic batch are
scored in one pass of the exported scoring graph (`model.onnx`, ONNX Runtime: `trainer/serving/graph.py`);
ATTRIBUTION, which needs gradients, runs the torch network, and only for the requests that ask for it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

# The stub runs one process per model instance, so the snapshot shadows the installed packages only here;
# bytecode was compiled at export (writing it would look like a changed version to Triton's poll).
sys.dont_write_bytecode = True
sys.path.insert(0, str(Path(__file__).resolve().parent / "code"))

import numpy as np  # noqa: E402
import torch  # noqa: E402
import triton_python_backend_utils as pb_utils  # noqa: E402

from trainer.model.bundle import ClickcastModel  # noqa: E402
from trainer.model.explain import attribution  # noqa: E402
from trainer.model.inputs import Histories  # noqa: E402
from trainer.serving.graph import GRAPH_FILE, GraphScorer  # noqa: E402
from trainer.serving.requests import request_histories  # noqa: E402

INPUTS = ("ITEM_IDS", "TIMESTAMPS", "LATITUDES", "LONGITUDES")


class TritonPythonModel:
    def initialize(self, args: dict) -> None:
        torch.set_num_threads(1)  # one instance per core; more threads per instance hurt p99 under load
        version_dir = Path(args["model_repository"]) / args["model_version"]
        self.model = ClickcastModel.load(version_dir)
        config = json.loads(args["model_config"])
        dims = {t["name"]: int(t["dims"][0]) for t in config["input"] + config["output"]}
        if dims["TIMESTAMPS"] != self.model.cfg.max_len or dims["ITEM_IDS"] != 1:
            raise pb_utils.TritonModelException(
                f"config.pbtxt expects histories of {dims['TIMESTAMPS']} events, the model was trained on "
                f"{self.model.cfg.max_len}: re-export to rewrite config.pbtxt"
            )
        self.top_k = dims["TOP_ITEMS"]
        self.scorer = GraphScorer(version_dir / GRAPH_FILE, self.model)
        if self.scorer.k != self.top_k:
            raise pb_utils.TritonModelException(
                f"config.pbtxt asks for the top {self.top_k}, the graph gives {self.scorer.k}: re-export"
            )
        self.item_ids = np.asarray([s.encode("utf-8") for s in self.model.item_ids], dtype=object)

    def execute(self, requests: list) -> list:
        responses: list = [None] * len(requests)
        parsed = {}
        for i, r in enumerate(requests):
            try:
                arrays = [pb_utils.get_input_tensor_by_name(r, n).as_numpy() for n in INPUTS]
                parsed[i] = request_histories(self.model, *arrays)
            except ValueError as exc:  # this request's own error; the others in the batch are still scored
                responses[i] = _error(f"bad request: {exc}")
        if parsed:
            try:
                scored = self._score([requests[i] for i in parsed], list(parsed.values()))
            except Exception:
                # The batch may hold other workers' requests: one that fails the joint scoring must fail alone.
                scored = [self._score_alone(requests[i], h) for i, h in parsed.items()]
            for i, response in zip(parsed, scored, strict=True):
                responses[i] = response
        return responses

    def _score_alone(self, request, histories: Histories):
        try:
            return self._score([request], [histories])[0]
        except Exception as exc:
            return _error(f"scoring failed: {exc!r}")

    def _score(self, requests: list, histories: list[Histories]) -> list:
        sizes = [len(h.items) for h in histories]
        h = Histories(*(np.concatenate([getattr(x, f) for x in histories]) for f in ("items", "ts", "lat", "lon")))
        scores, top = self.scorer.top_k(h)
        wants = [set(r.requested_output_names()) for r in requests]
        explain = np.flatnonzero(["ATTRIBUTION" in w for w in wants])
        starts = np.concatenate([[0], np.cumsum(sizes)])
        weights = {}
        if len(explain):
            rows = np.concatenate([np.arange(starts[i], starts[i + 1]) for i in explain])
            sub = Histories(items=h.items[rows], ts=h.ts[rows], lat=h.lat[rows], lon=h.lon[rows])
            # The graph's top item, which TOP_ITEMS names: the explanation is of the answer given.
            weights = dict(zip(rows.tolist(), attribution(self.model, sub, top=top[rows, 0]), strict=True))
        responses = []
        for i, want in enumerate(wants):
            lo, hi = starts[i], starts[i + 1]
            outputs = [
                pb_utils.Tensor("TOP_ITEMS", self.item_ids[top[lo:hi]]),
                pb_utils.Tensor("TOP_SCORES", scores[lo:hi]),
            ]
            if "ATTRIBUTION" in want:
                outputs.append(pb_utils.Tensor("ATTRIBUTION", np.stack([weights[r] for r in range(lo, hi)])))
            responses.append(pb_utils.InferenceResponse(output_tensors=outputs))
        return responses


def _error(message: str):
    """The response of a request that failed: its own error, the batch's other requests answered."""
    return pb_utils.InferenceResponse(output_tensors=[], error=pb_utils.TritonError(message))
