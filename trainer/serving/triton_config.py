"""The Triton model configuration (config.pbtxt) of the clickcast python-backend model."""

from __future__ import annotations

DEFAULT_TOP_K = 10
DEFAULT_MAX_BATCH_SIZE = 256
DEFAULT_INSTANCES = 2  # one per core; each instance scores on 1 thread
KEEP_VERSIONS = 3  # versions an export leaves: the new one, and two to roll back to
# Workers already send micro-batches, one request per instance: a delay would only hold a request while an instance
# is free (queued requests are still batched whenever every instance is busy). With the ONNX scoring path, paired
# against 500 us: 1,000 events/s p99 113 / 84 against 167 / 106 ms, full speed 2,116 / 2,421 against 1,850 / 1,995
# events/s, 100 events/s mixed (p99 21.2 / 13.1 against 18.2 / 19.4 ms); a batch-1 request queued 0.62 ms, now 0.10.
# Under torch it had measured within noise.
DEFAULT_QUEUE_DELAY_US = 0


def triton_config(
    model_name: str,
    history_len: int,
    top_k: int = DEFAULT_TOP_K,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    instances: int = DEFAULT_INSTANCES,
    queue_delay_us: int = DEFAULT_QUEUE_DELAY_US,
) -> str:
    def tensor(name: str, dtype: str, dim: int) -> str:
        return f'  {{ name: "{name}" data_type: {dtype} dims: [ {dim} ] }}'

    inputs = ",\n".join(
        [
            # One string per history: its item ids joined by spaces (ids never hold one; see schemas), so a
            # request carries one BYTES element per row instead of L, each (de)serialised in Python.
            tensor("ITEM_IDS", "TYPE_STRING", 1),
            tensor("TIMESTAMPS", "TYPE_FP64", history_len),
            tensor("LATITUDES", "TYPE_FP32", history_len),
            tensor("LONGITUDES", "TYPE_FP32", history_len),
        ]
    )
    outputs = ",\n".join(
        [
            tensor("TOP_ITEMS", "TYPE_STRING", top_k),
            tensor("TOP_SCORES", "TYPE_FP32", top_k),
            tensor("ATTRIBUTION", "TYPE_FP32", history_len),
        ]
    )
    return f"""name: "{model_name}"
backend: "python"
max_batch_size: {max_batch_size}
input [
{inputs}
]
output [
{outputs}
]
instance_group [ {{ count: {instances} kind: KIND_CPU }} ]
dynamic_batching {{ max_queue_delay_microseconds: {queue_delay_us} }}
# Serve only the newest version: exporting version N+1 rolls it out, N is unloaded once N+1 is ready.
version_policy: {{ latest: {{ num_versions: 1 }} }}
"""
