"""The two comparison pipelines, each run as its own process like a clickcast worker:

- `naive`: the loop a user writes first from the same parts. Per event: parse, update the user's
  history, compute the same features, Feast `push` of that one row, one Triton request of batch 1,
  produce the prediction.
- `passthrough`: consume and produce the click unchanged, no work: the broker's ceiling for a Python
  client on this machine.

`python -m tests.benchmarks.relay naive|passthrough --group G --output TOPIC` prints `relay ready`
once its partitions are assigned (positioned at the end of the clicks topic) and runs until SIGTERM.
"""

from __future__ import annotations

import argparse
import signal
import time
from datetime import UTC, datetime

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from streams.consumer import watermarks
from streams.kafka_config import confluent_config
from streams.settings import Settings, get_settings

READY_LINE = "relay ready"


class _Stop:
    requested = False

    def __call__(self, *_: object) -> None:
        self.requested = True


def _consumer(settings: Settings, group: str) -> Consumer:
    consumer = Consumer(confluent_config(settings.kafka, **{"group.id": group, "enable.auto.commit": True}))

    def at_end(c: Consumer, partitions) -> None:
        # Explicit end offsets: only what the bench publishes after `ready` is this run's work.
        for tp in partitions:
            tp.offset = watermarks(c, tp)[1]
        c.assign(partitions)
        print(READY_LINE, flush=True)

    consumer.subscribe([settings.topics.clicks], on_assign=at_end)
    return consumer


def _producer(settings: Settings, **config: object) -> Producer:
    return Producer(confluent_config(settings.kafka, **config))


def _check(msg) -> bool:
    """True for a message to handle; raises on real errors."""
    if msg.error() is None:
        return True
    if msg.error().code() == KafkaError._PARTITION_EOF:
        return False
    raise KafkaException(msg.error())


def passthrough(settings: Settings, group: str, output: str, stop: _Stop) -> None:
    # No linger, like the workers' producer: the pass-through's latency is then the floor under theirs.
    consumer, producer = _consumer(settings, group), _producer(settings, **{"linger.ms": 0})
    while not stop.requested:
        first = consumer.poll(0.1)
        if first is None:
            continue
        # consume() with a timeout waits to fill the batch: take only what has already arrived.
        for msg in [first, *consumer.consume(num_messages=499, timeout=0)]:
            if _check(msg):
                producer.produce(output, value=msg.value(), key=msg.key())
        producer.poll(0)
    producer.flush(10.0)
    consumer.close()


class NaivePredictor:
    """One synchronous Triton request of batch 1 per event."""

    def __init__(self, settings: Settings) -> None:
        import tritonclient.grpc as grpcclient

        self._grpc = grpcclient
        self.model_name = settings.triton.model_name
        self.client = grpcclient.InferenceServerClient(settings.triton.grpc_url)
        config = self.client.get_model_config(self.model_name, as_json=True)["config"]
        self.seq_len = next(int(t["dims"][-1]) for t in config["input"] if t["name"] == "TIMESTAMPS")

    def predict(self, visits) -> tuple[list[str], list[float], str]:
        import numpy as np

        from streams.predictor import sequence_arrays

        inputs = []
        for name, array in sequence_arrays([visits], self.seq_len).items():
            dtype = "BYTES" if array.dtype == object else ("FP64" if array.dtype == np.float64 else "FP32")
            tensor = self._grpc.InferInput(name, list(array.shape), dtype)
            tensor.set_data_from_numpy(array)
            inputs.append(tensor)
        outputs = [self._grpc.InferRequestedOutput(n) for n in ("TOP_ITEMS", "TOP_SCORES")]
        result = self.client.infer(self.model_name, inputs, outputs=outputs)
        items = [i.decode() for i in result.as_numpy("TOP_ITEMS")[0]]
        scores = [float(s) for s in result.as_numpy("TOP_SCORES")[0]]
        return items, scores, result.get_response().model_version


def naive(settings: Settings, group: str, output: str, stop: _Stop) -> None:
    import pandas as pd
    from feast.data_source import PushMode

    from features.compute import compute_features
    from features.history import UserHistory, Visit
    from features.repo import JOIN_KEY, PUSH_SOURCE_NAME, TIMESTAMP_FIELD
    from features.store import apply_definitions, build_store
    from schemas.events import ClickEvent, DeadLetter, PredictionEvent, ScoredItem, StageLatency

    store = build_store(settings)
    apply_definitions(store)
    predictor = NaivePredictor(settings)
    stream = settings.stream
    histories: dict[str, UserHistory] = {}
    consumer, producer = _consumer(settings, group), _producer(settings)  # client defaults, as a first try has
    while not stop.requested:
        msg = consumer.poll(0.1)
        if msg is None or not _check(msg):
            continue
        received = time.time()
        published = msg.timestamp()[1] / 1000.0
        try:
            event = ClickEvent.from_wire(msg.value())
        except ValueError as exc:  # pydantic's ValidationError is a ValueError
            letter = DeadLetter.for_payload(msg.value(), str(exc), msg.topic(), msg.partition(), msg.offset())
            producer.produce(settings.topics.dead_letters, value=letter.to_wire())
            continue
        t0 = time.perf_counter()
        history = histories.get(event.user_id)
        if history is None:
            history = histories[event.user_id] = UserHistory(
                allowed_lateness_s=stream.allowed_lateness_s,
                retention_s=stream.history_retention_s,
                max_events=stream.history_max_events,
            )
        visit = Visit(event.event_id, event.timestamp, event.item_id, event.latitude, event.longitude)
        history.add(visit)
        visits = history.visits
        features = compute_features(visits, visit)
        t1 = time.perf_counter()
        row = {JOIN_KEY: event.user_id, TIMESTAMP_FIELD: event.event_time, **features}
        store.push(PUSH_SOURCE_NAME, pd.DataFrame([row]), to=PushMode.ONLINE)
        t2 = time.perf_counter()
        items, scores, version = predictor.predict([v for v in visits if v.ts <= visit.ts])
        t3 = time.perf_counter()
        predicted = time.time()
        prediction = PredictionEvent(
            event_id=event.event_id,
            user_id=event.user_id,
            items=[ScoredItem(item_id=i, score=s) for i, s in zip(items, scores, strict=True)],
            model_name=predictor.model_name,
            model_version=version,
            features=features,
            event_time=event.event_time,
            published_at=datetime.fromtimestamp(published, UTC),
            received_at=datetime.fromtimestamp(received, UTC),
            predicted_at=datetime.fromtimestamp(predicted, UTC),
            latency=StageLatency(
                kafka_in_ms=max(0.0, (received - published) * 1000.0),
                features_ms=(t1 - t0) * 1000.0,
                feast_write_ms=(t2 - t1) * 1000.0,
                triton_ms=(t3 - t2) * 1000.0,
                total_ms=max(0.0, (predicted - published) * 1000.0),
            ),
        )
        producer.produce(output, value=prediction.to_wire(), key=event.user_id.encode())
        producer.poll(0)
    producer.flush(10.0)
    consumer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("mode", choices=("naive", "passthrough"))
    parser.add_argument("--group", required=True, help="consumer group (fresh per run)")
    parser.add_argument("--output", required=True, help="topic the answers go to")
    args = parser.parse_args()
    stop = _Stop()
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    (naive if args.mode == "naive" else passthrough)(get_settings(), args.group, args.output, stop)


if __name__ == "__main__":
    main()
