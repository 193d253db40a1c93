"""Async Triton client for the next-item model: batched requests, timeouts, retries, model version.

The wire contract (see model_repository/clickcast): ITEM_IDS [1] per row, the history's item ids joined by
spaces; TIMESTAMPS / LATITUDES / LONGITUDES [L] per row, oldest..newest, left-padded; outputs TOP_ITEMS /
TOP_SCORES [K] and, on request, ATTRIBUTION [L].
L, K and the batch limit are read from the served model's config, so a new model version needs no client change.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from operator import attrgetter

import numpy as np

from features.history import Visit
from streams.settings import TritonSettings

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Prediction:
    items: list[str]
    scores: list[float]
    model_version: str
    attribution: list[float] | None = None


# gRPC statuses of a call that may pass on a retry (Triton down, overloaded, timed out, the connection broken): retried.
# Any other error is a refusal of the request, by Triton or by the client building it, which would come again;
# `streams.refusals` tells a refused click apart from a broken model.
TRANSIENT_STATUSES = frozenset(
    f"StatusCode.{code}"
    for code in ("UNAVAILABLE", "DEADLINE_EXCEEDED", "CANCELLED", "RESOURCE_EXHAUSTED", "ABORTED", "UNKNOWN")
)


class RequestRefused(RuntimeError):
    """Triton answered a request with an error: the same request would be refused again."""


MIN_CHUNK = 16  # rows per request below which splitting a batch across instances costs more than it saves


@dataclass(frozen=True)
class ModelShape:
    seq_len: int
    top_k: int
    max_batch: int
    instances: int = 1

    def request_sizes(self, rows: int) -> list[int]:
        """How a batch of `rows` (>= 1) goes out: one request per model instance at most while each keeps at least
        MIN_CHUNK rows (a few leftover rows would cost a request of their own), more only where the batch limit
        needs them; sizes differ by one row at most."""
        requests = max(1, min(self.instances, rows // MIN_CHUNK), -(-rows // self.max_batch))
        size, larger = divmod(rows, requests)
        return [size + 1] * larger + [size] * (requests - larger)


_item_id, _ts, _lat, _lon = (attrgetter(f) for f in ("item_id", "ts", "lat", "lon"))


def sequence_arrays(histories: Sequence[Sequence[Visit]], seq_len: int) -> dict[str, np.ndarray]:
    """The model's inputs for a batch of users: last `seq_len` visits each, left-padded."""
    n = len(histories)
    items = np.empty((n, 1), dtype=object)
    ts = np.zeros((n, seq_len), dtype=np.float64)
    lat = np.zeros((n, seq_len), dtype=np.float32)
    lon = np.zeros((n, seq_len), dtype=np.float32)
    for row, visits in enumerate(histories):
        recent = visits[-seq_len:]
        items[row, 0] = " ".join(map(_item_id, recent)).encode()
        if recent:  # one slice assignment per array: numpy converts the lists in C
            start = seq_len - len(recent)
            ts[row, start:] = list(map(_ts, recent))
            lat[row, start:] = list(map(_lat, recent))
            lon[row, start:] = list(map(_lon, recent))
    return {"ITEM_IDS": items, "TIMESTAMPS": ts, "LATITUDES": lat, "LONGITUDES": lon}


class TritonPredictor:
    """One async gRPC client per worker; a micro-batch goes out as concurrent requests, one per model instance."""

    def __init__(self, settings: TritonSettings, explain: bool = False) -> None:
        self.settings = settings
        self.explain = explain
        self._client = None
        self.shape: ModelShape | None = None

    @property
    def model_name(self) -> str:
        return self.settings.model_name

    async def start(self) -> None:
        import tritonclient.grpc.aio as grpcclient

        if self._client is None:  # retried while Triton is down: one client, which reconnects by itself
            self._client = grpcclient.InferenceServerClient(self.settings.grpc_url)
        self.shape = await self._read_shape()

    async def close(self) -> None:
        if self._client is not None:
            await self._client.close()

    async def _read_shape(self) -> ModelShape:
        name, timeout = self.settings.model_name, self.settings.timeout_s
        config = (await self._client.get_model_config(name, as_json=True, client_timeout=timeout))["config"]
        dims = {t["name"]: [int(d) for d in t["dims"]] for t in config["input"] + config["output"]}
        return ModelShape(
            seq_len=dims["TIMESTAMPS"][-1],
            top_k=dims["TOP_ITEMS"][-1],
            max_batch=int(config.get("max_batch_size", 0)) or 1,
            instances=sum(int(group.get("count", 1)) for group in config.get("instance_group", [])) or 1,
        )

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]:
        assert self.shape is not None, "call start() first"
        if not histories:
            return []
        # Chunks of similar history length: the model skips the columns that are padding in every row.
        order = sorted(range(len(histories)), key=lambda i: len(histories[i]))
        chunks, lo = [], 0
        for size in self.shape.request_sizes(len(histories)):
            chunks.append([histories[i] for i in order[lo : lo + size]])
            lo += size
        try:
            results = await asyncio.gather(*(self._predict_chunk(chunk) for chunk in chunks))
        except Exception:
            # A version of another shape (history length, top-k) may have been loaded since the shape was read,
            # and every request in the old one would fail: read it again for the caller's next try.
            with contextlib.suppress(Exception):
                self.shape = await self._read_shape()
            raise
        predictions: list[Prediction] = [None] * len(histories)  # type: ignore[list-item]
        for i, prediction in zip(order, (p for chunk in results for p in chunk), strict=True):
            predictions[i] = prediction
        return predictions

    async def _predict_chunk(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]:
        import tritonclient.grpc.aio as grpcclient
        from tritonclient.utils import InferenceServerException

        arrays = sequence_arrays(histories, self.shape.seq_len)
        inputs = []
        for name, array in arrays.items():
            dtype = "BYTES" if array.dtype == object else ("FP64" if array.dtype == np.float64 else "FP32")
            tensor = grpcclient.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        wanted = ["TOP_ITEMS", "TOP_SCORES"] + (["ATTRIBUTION"] if self.explain else [])
        outputs = [grpcclient.InferRequestedOutput(name) for name in wanted]
        delay = 0.05
        for attempt in range(self.settings.retries + 1):
            try:
                result = await self._client.infer(
                    self.settings.model_name, inputs, outputs=outputs, client_timeout=self.settings.timeout_s
                )
                break
            except InferenceServerException as exc:
                if exc.status() not in TRANSIENT_STATUSES:
                    raise RequestRefused(f"triton refused the request: {exc.message()}") from exc
                if attempt == self.settings.retries:
                    raise
                log.warning("triton call failed (attempt %d): %s; retrying in %.2fs", attempt + 1, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
        version = result.get_response().model_version
        items = result.as_numpy("TOP_ITEMS")
        scores = result.as_numpy("TOP_SCORES")
        attribution = result.as_numpy("ATTRIBUTION") if self.explain else None
        return [
            Prediction(
                items=[i.decode() if isinstance(i, bytes) else str(i) for i in items[row]],
                scores=[float(s) for s in scores[row]],
                model_version=version,
                attribution=None if attribution is None else [float(a) for a in attribution[row]],
            )
            for row in range(len(histories))
        ]
