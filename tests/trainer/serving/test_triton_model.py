"""The python-backend model.py, run as Triton's stub runs it (in a process of its own, with a stand-in for the
backend's utils module): one request that fails the joint scoring of a dynamic batch fails alone."""

import json
import subprocess
import sys

from trainer.serving.export import export_model

EXECUTE = """
import json, sys, types
from pathlib import Path
import numpy as np

pb = types.ModuleType("triton_python_backend_utils")
class TritonError:
    def __init__(self, message): self.message = message
class TritonModelException(Exception): pass
class Tensor:
    def __init__(self, name, array): self.name, self.array = name, array
    def as_numpy(self): return self.array
class InferenceResponse:
    def __init__(self, output_tensors, error=None): self.output_tensors, self.error = output_tensors, error
class Request:
    def __init__(self, inputs): self.inputs = inputs
    def requested_output_names(self): return ["TOP_ITEMS", "TOP_SCORES"]
pb.TritonError, pb.TritonModelException, pb.Tensor, pb.InferenceResponse = (
    TritonError, TritonModelException, Tensor, InferenceResponse
)
pb.get_input_tensor_by_name = lambda request, name: Tensor(name, request.inputs[name])
sys.modules["triton_python_backend_utils"] = pb

version, length, top_k = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
sys.path.insert(0, str(version))
import model

dims = {"ITEM_IDS": 1, "TIMESTAMPS": length, "LATITUDES": length, "LONGITUDES": length}
outputs = {"TOP_ITEMS": top_k, "TOP_SCORES": top_k, "ATTRIBUTION": length}
config = {
    "input": [{"name": n, "dims": [str(d)]} for n, d in dims.items()],
    "output": [{"name": n, "dims": [str(d)]} for n, d in outputs.items()],
}
served = model.TritonPythonModel()
args = {"model_repository": str(version.parent), "model_version": version.name, "model_config": json.dumps(config)}
served.initialize(args)
joint = served.scorer.top_k
def top_k_unless_poisoned(h):  # a history that breaks the scoring of whatever batch holds it
    if (h.ts == 12345.0).any():
        raise RuntimeError("poisoned history")
    return joint(h)
served.scorer.top_k = top_k_unless_poisoned

def request(ts):
    times = np.zeros((1, length)); times[0, -1] = ts
    coords = np.zeros((1, length), dtype=np.float32); coords[0, -1] = 40.7
    return Request({"ITEM_IDS": np.array([[b"somewhere"]], dtype=object), "TIMESTAMPS": times,
                    "LATITUDES": coords, "LONGITUDES": coords})

responses = served.execute([request(1.34e9), request(12345.0), request(1.35e9)])
print(json.dumps([[r.error.message if r.error else None, [t.name for t in r.output_tensors]] for r in responses]))
"""


def test_a_request_that_fails_the_joint_scoring_fails_alone_and_the_batch_is_answered(fitted, tmp_path):
    fitted.save(tmp_path / "trained")
    version = tmp_path / "repo" / "clickcast" / str(export_model(tmp_path / "trained", tmp_path / "repo"))
    args = [str(version), str(fitted.config.max_len), "10"]
    out = subprocess.run(
        [sys.executable, "-c", EXECUTE, *args], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    (good, good_outputs), (poisoned, _), (other, other_outputs) = json.loads(out.splitlines()[-1])
    assert good is None and other is None and good_outputs == other_outputs == ["TOP_ITEMS", "TOP_SCORES"]
    assert "scoring failed" in poisoned and "poisoned history" in poisoned
