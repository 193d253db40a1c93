"""CPU per click of the stream's own code, without broker, online store or model (`clickcast bench processor`).

An events file is replayed through `ClickProcessor` in micro-batches, with the deterministic stand-ins of
`streams.testing`: user state round-trips through orjson as the worker's table does, and a stand-in predictor builds
the real Triton inputs (`sequence_arrays`) before answering every click with the same ten places; every prediction
is encoded for the wire. The first half of the events warms the users' histories (steady state, like `bench e2e
--prefill`); the second half is measured with `time.process_time`. What it measures is what a worker's event
loop spends on a click besides faust, Kafka, gRPC and the Feast write: steadier than the end-to-end figures,
for comparing changes to the per-click path.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence

from features.history import Visit
from streams.predictor import Prediction, sequence_arrays
from streams.processor import ClickProcessor, RawMessage
from streams.settings import StreamSettings
from streams.testing import DictState, ListSink
from tests.benchmarks.workload import Workload
from trainer.model.config import ClickcastConfig

MODEL_HISTORY = ClickcastConfig().max_len  # the shipped model's input length (no Triton to ask here)


class _CountingState(DictState):
    loads = 0

    def get(self, user_id: str, source: RawMessage | None = None) -> dict | None:
        self.loads += 1
        return super().get(user_id, source)


class _InputBuildingPredictor:
    """Builds the Triton request's arrays, as the worker's predictor does, and answers every click with the same
    ten places: what the answer says does not change what encoding it costs, and ranking them here would count
    the stand-in's work as the stream's."""

    model_name = "replay"

    def __init__(self) -> None:
        self.history_events = 0
        self._answer = Prediction([f"place-{i}" for i in range(10)], [-1.0 - 0.25 * i for i in range(10)], "1")

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]:
        sequence_arrays(histories, MODEL_HISTORY)
        self.history_events += sum(min(len(h), MODEL_HISTORY) for h in histories)
        return [self._answer] * len(histories)


def replay(
    workload: Workload, events: int, batch: int, settings: StreamSettings, progress: Callable[[str], None]
) -> dict[str, float]:
    payloads = workload.payloads(2 * events, "replay")
    messages = [RawMessage(p.value, p.key, "clicks", 0, i, time.time()) for i, p in enumerate(payloads)]
    state, predictor = _CountingState(), _InputBuildingPredictor()
    processor = ClickProcessor(state, ListSink(), predictor, settings)

    async def run(part: list[RawMessage], label: str) -> int:
        answered = 0
        for lo in range(0, len(part), batch):
            result = await processor.process(part[lo : lo + batch])
            answered += len(result.predictions)
            if (lo // batch) % max(1, len(part) // batch // 5) == 0:
                progress(f"{label}: {lo + batch}/{len(part)} events")
        return answered

    asyncio.run(run(messages[:events], "warm-up"))
    state.loads, predictor.history_events = 0, 0
    started_cpu, started = time.process_time(), time.perf_counter()
    answered = asyncio.run(run(messages[events:], "measured"))
    cpu_s, wall_s = time.process_time() - started_cpu, time.perf_counter() - started
    return {
        "events": events,
        "answered": answered,
        "batch": batch,
        "cpu_us_per_event": round(cpu_s / events * 1e6, 1),
        "wall_us_per_event": round(wall_s / events * 1e6, 1),
        "state_loads_per_event": round(state.loads / events, 3),
        "model_history_events_mean": round(predictor.history_events / max(answered, 1), 1),
    }
