"""A tiny python-backend model with the `clickcast` model's contract, for testing the stack without a
trained model: `python -m tests.deploy.tiny_model <repository> [version]`.

It ranks the items of the request by recency (newest first) with scores from a softmax over positions,
so its answer depends on its inputs.
"""

from __future__ import annotations

import sys
from pathlib import Path

TOP_K = 5

CONFIG = """name: "{name}"
backend: "python"
max_batch_size: 0
input [
  {{ name: "ITEM_IDS" data_type: TYPE_STRING dims: [ 1 ] }},
  {{ name: "TIMESTAMPS" data_type: TYPE_FP64 dims: [ -1 ] }},
  {{ name: "LATITUDES" data_type: TYPE_FP32 dims: [ -1 ] }},
  {{ name: "LONGITUDES" data_type: TYPE_FP32 dims: [ -1 ] }}
]
output [
  {{ name: "TOP_ITEMS" data_type: TYPE_STRING dims: [ {k} ] }},
  {{ name: "TOP_SCORES" data_type: TYPE_FP32 dims: [ {k} ] }}
]
instance_group [ {{ kind: KIND_CPU count: 1 }} ]
"""

MODEL_PY = '''"""Tiny test model: most recent distinct items first, padded with empty ids."""

import numpy as np
import triton_python_backend_utils as pb_utils

TOP_K = {k}


class TritonPythonModel:
    def execute(self, requests):
        responses = []
        for request in requests:
            joined = pb_utils.get_input_tensor_by_name(request, "ITEM_IDS").as_numpy().reshape(-1)[0]
            items = [i.encode() for i in joined.decode().split()]
            stamps = pb_utils.get_input_tensor_by_name(request, "TIMESTAMPS").as_numpy().reshape(-1)
            stamps = stamps[len(stamps) - len(items) :]  # the ids fill the newest columns
            order = np.argsort(-stamps, kind="stable")
            top = []
            for i in order:
                if items[i] not in top:
                    top.append(items[i])
            top = (top + [b""] * TOP_K)[:TOP_K]
            logits = -np.arange(TOP_K, dtype=np.float32)
            scores = np.exp(logits) / np.exp(logits).sum()
            responses.append(
                pb_utils.InferenceResponse(
                    output_tensors=[
                        pb_utils.Tensor("TOP_ITEMS", np.array(top, dtype=np.object_)),
                        pb_utils.Tensor("TOP_SCORES", scores.astype(np.float32)),
                    ]
                )
            )
        return responses
'''


def write_tiny_model(repository: Path, version: int = 1, name: str = "clickcast") -> Path:
    """Write config.pbtxt and `<version>/model.py`; returns the version folder."""
    model_dir = repository / name
    version_dir = model_dir / str(version)
    version_dir.mkdir(parents=True, exist_ok=True)
    (model_dir / "config.pbtxt").write_text(CONFIG.format(name=name, k=TOP_K))
    (version_dir / "model.py").write_text(MODEL_PY.format(k=TOP_K))
    return version_dir


if __name__ == "__main__":
    write_tiny_model(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 1)
