"""Component figures: Triton model rows/s at fixed batch sizes, and the Feast online write/read path.

The Feast figures come from `features.store_benchmark` (the project's writer against `push` at the
same batch sizes, and reads), run here and read back from its report lines.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import datetime

import numpy as np

from features.history import Visit
from streams.predictor import sequence_arrays
from streams.settings import Settings
from tests.benchmarks.stats import percentiles

TRITON_BATCHES = (1, 64)


def histories_from(events: Sequence[dict], rows: int, seq_len: int) -> list[list[Visit]]:
    """`rows` users' visit sequences (up to `seq_len` each) from real events, the longest first."""
    by_user: dict[str, list[Visit]] = {}
    for e in events:
        ts = datetime.fromisoformat(e["event_time"]).timestamp()
        by_user.setdefault(e["user_id"], []).append(
            Visit(e["event_id"], ts, e["item_id"], e["latitude"], e["longitude"])
        )
    longest = sorted(by_user.values(), key=len, reverse=True)
    return [longest[i % len(longest)][-seq_len:] for i in range(rows)]


def served_config(settings: Settings) -> dict:
    """The served model's config, as Triton reads it."""
    import tritonclient.grpc as grpcclient

    client = grpcclient.InferenceServerClient(settings.triton.grpc_url)
    try:
        return client.get_model_config(settings.triton.model_name, as_json=True)["config"]
    finally:
        client.close()


def history_length(config: dict) -> int:
    """The history length a served model reads (its TIMESTAMPS input)."""
    return next(int(t["dims"][-1]) for t in config["input"] if t["name"] == "TIMESTAMPS")


def triton_rows_per_s(
    settings: Settings, events: Sequence[dict], batches: Sequence[int] = TRITON_BATCHES, seconds: float = 5.0
) -> dict[str, dict[str, float]]:
    """Sequential requests of each batch size from one gRPC client: rows/s and request latency."""
    import tritonclient.grpc as grpcclient

    config = served_config(settings)
    seq_len, max_batch = history_length(config), int(config.get("max_batch_size", 0))
    client = grpcclient.InferenceServerClient(settings.triton.grpc_url)
    model = settings.triton.model_name
    outputs = [grpcclient.InferRequestedOutput(n) for n in ("TOP_ITEMS", "TOP_SCORES")]
    figures = {}
    for batch in batches:
        if batch > max(max_batch, 1):
            continue
        inputs = []
        histories = histories_from(events, batch, seq_len)
        for name, array in sequence_arrays(histories, seq_len).items():
            dtype = "BYTES" if array.dtype == object else ("FP64" if array.dtype == np.float64 else "FP32")
            tensor = grpcclient.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        for _ in range(3):  # warm-up
            client.infer(model, inputs, outputs=outputs)
        timings = []
        began = time.perf_counter()
        while time.perf_counter() - began < seconds or len(timings) < 5:
            start = time.perf_counter()
            client.infer(model, inputs, outputs=outputs)
            timings.append((time.perf_counter() - start) * 1000.0)
        elapsed = time.perf_counter() - began
        figures[str(batch)] = {
            "rows_per_s": round(batch * len(timings) / elapsed, 1),
            "requests": len(timings),
            "history_mean": round(sum(map(len, histories)) / batch, 1),  # events a row: the model's cost grows with it
            **percentiles(timings),
        }
    client.close()
    return figures


# The stack runs both: SQLite is the embedded default, Redis the production store.
FEAST_STORES = ("sqlite", "redis")


def feast_figures(rows: int = 5000, stores: Sequence[str] = FEAST_STORES) -> dict[str, dict]:
    """`features.store_benchmark` on each online store: writer vs push rows/s per batch size, read latency."""
    from features import store_benchmark

    return {store: {"online_store": store, "rows": rows, **store_benchmark.run(store, rows)} for store in stores}
