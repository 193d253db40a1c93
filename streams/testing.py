"""Deterministic sources and sinks for testing stream logic without a broker (Bytewax style).

Integration tests use the real Kafka, Feast and Triton; these stand-ins exist so the processing
rules (validation, dedupe, lateness, one answer per event) can be checked exactly and fast.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence

import orjson

from features.history import Visit
from schemas.events import ClickEvent
from streams.predictor import Prediction
from streams.processor import FeatureRow, RawMessage


def messages_from(
    events: Iterable[ClickEvent | bytes], topic: str = "clicks", start_ts: float = 1e9
) -> list[RawMessage]:
    """Raw messages as the broker would hand them over, one partition, consecutive offsets."""
    out = []
    for offset, event in enumerate(events):
        value = event if isinstance(event, bytes) else event.to_wire()
        key = None if isinstance(event, bytes) else event.user_id.encode()
        out.append(RawMessage(value, key, topic, 0, offset, start_ts + offset * 0.001))
    return out


class DictState(dict):
    """User state in a dict, JSON round-tripped like the RocksDB store does (faust uses orjson when installed)."""

    def get(self, user_id: str, source: RawMessage | None = None) -> dict | None:
        return super().get(user_id)

    def put(self, user_id: str, state: dict, source: RawMessage) -> None:
        self[user_id] = orjson.loads(orjson.dumps(state))


class ListSink:
    """Collects every feature row written, in order."""

    def __init__(self) -> None:
        self.batches: list[list[FeatureRow]] = []

    async def write(self, rows: Sequence[FeatureRow]) -> None:
        self.batches.append(list(rows))

    @property
    def rows(self) -> list[FeatureRow]:
        return [row for batch in self.batches for row in batch]


class FrequencyPredictor:
    """Ranks the items of the sequence it is given by visit count: a real, deterministic model."""

    model_name = "frequency"

    def __init__(self, top_k: int = 3) -> None:
        self.top_k = top_k
        self.calls: list[int] = []  # batch sizes seen

    async def predict(self, histories: Sequence[Sequence[Visit]]) -> list[Prediction]:
        self.calls.append(len(histories))
        out = []
        for visits in histories:
            ranked = Counter(v.item_id for v in visits).most_common(self.top_k)
            out.append(Prediction([i for i, _ in ranked], [float(n) for _, n in ranked], "1"))
        return out


class RocksStore:
    """The parts of faust's RocksDB table store that `streams.table_sweep` reads: a raw-mode RocksDB per partition
    (with faust's offset record in each), the assignor's active partitions and the table's changelog topic."""

    CHANGELOG = "app-user-history-changelog"
    use_rocksdict = True

    def __init__(self, directory, partitions: Iterable[int], active: Iterable[int] | None = None) -> None:
        from types import SimpleNamespace

        import rocksdict
        from faust.types import TP

        from streams.table_sweep import OFFSET_KEY

        self._dbs = {}
        for partition in partitions:
            db = rocksdict.Rdict(str(directory / f"p{partition}"), options=rocksdict.Options(raw_mode=True))
            db[OFFSET_KEY] = b"0"
            self._dbs[partition] = db
        self.active = {TP(self.CHANGELOG, p) for p in (self._dbs if active is None else active)}
        self.app = SimpleNamespace(assignor=SimpleNamespace(assigned_actives=lambda: self.active))
        self.table = SimpleNamespace(changelog_topic_name=self.CHANGELOG)

    def put(self, partition: int, user_id: str, value: bytes) -> None:
        self._dbs[partition][orjson.dumps(user_id)] = value  # keys as the table's json serializer writes them

    def __delitem__(self, user_id: str) -> None:
        for db in self._dbs.values():
            del db[orjson.dumps(user_id)]

    def close(self) -> None:
        for db in self._dbs.values():
            db.close()
