"""One micro-batch of raw click messages in, prediction events and dead letters out.

Kept free of faust so it runs the same under the worker, the naive benchmark and deterministic tests
(`streams.testing`). The faust agent owns the I/O: it reads the batch, sends what this returns, and
acks the offsets only after that.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from bisect import bisect_right
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

from pydantic import ValidationError

from features.compute import compute_features
from features.history import UNREADABLE_STATE, AddOutcome, UserHistory, Visit, visit_time
from schemas.events import ClickEvent, DeadLetter, PredictionEvent, prediction_wire
from streams.predictor import Prediction
from streams.refusals import Isolation, Refusal, Scorer
from streams.retry import never, retry_forever
from streams.settings import StreamSettings

log = logging.getLogger(__name__)

FeatureRow = tuple[str, float, dict[str, Any]]
MAX_BROKER_TS = datetime(9999, 1, 1, tzinfo=UTC).timestamp()
ROW_TIME_STEP_S = 1e-6  # the writers' resolution: a row time a step newer is newer to each


@dataclass(frozen=True)
class RawMessage:
    value: bytes | None
    key: bytes | None
    topic: str
    partition: int
    offset: int
    timestamp: float  # broker/producer timestamp, unix seconds: when the click was published


class StateStore(Protocol):
    """Per-user history state; `source` is the message whose partition owns the user."""

    def get(self, user_id: str, source: RawMessage) -> dict[str, Any] | None: ...

    def put(self, user_id: str, state: dict[str, Any], source: RawMessage) -> None: ...


class FeatureSink(Protocol):
    async def write(self, rows: Sequence[FeatureRow]) -> None: ...


class Predictor(Scorer, Protocol):
    model_name: str


@dataclass(frozen=True, slots=True)
class EncodedPrediction:
    """A prediction event as it goes on the wire (`value`), with what the stream and its tests read of it."""

    event_id: str
    user_id: str
    features: dict[str, Any]
    value: bytes

    def event(self) -> PredictionEvent:
        return PredictionEvent.from_wire(self.value)


@dataclass
class BatchResult:
    predictions: list[EncodedPrediction] = field(default_factory=list)
    dead_letters: list[DeadLetter] = field(default_factory=list)
    duplicates: int = 0
    late: int = 0


@dataclass
class _Pending:
    message: RawMessage
    event: ClickEvent
    features: dict[str, Any]
    sequence: Sequence[Visit]
    received_at: float
    features_ms: float


@dataclass
class PreparedBatch:
    """A batch after its synchronous part: state updated, features computed; model call and write to come."""

    result: BatchResult
    pending: list[_Pending]
    rows: list[FeatureRow]


def _row_time(visits: Sequence[Visit]) -> float:
    """The online-store timestamp of a user's row, that of the newest of `visits` (sorted by time): at least a
    microsecond after the row time of every earlier event, and its event time when none is that close. The project's
    writers let an equally new row win, but Feast's own Redis writer (the fallback for Redis cluster / sentinel) keeps a
    write only if its time is strictly newer, so two check-ins in the same minute written in separate batches would
    otherwise keep the first; and a burst of events within microseconds must still order its rows as its events.

    That time is the largest of ts_j + (events after j) µs over the events j: with events minutes apart the newest's
    own time, found at its predecessor (each step back can add at most a microsecond)."""
    last = len(visits) - 1
    best = visits[last].ts
    for j in range(last - 1, -1, -1):
        reach = visits[j].ts + (last - j) * ROW_TIME_STEP_S
        best = max(best, reach)
        if reach + j * ROW_TIME_STEP_S <= best:  # no earlier event can reach past it
            break
    return best


def _original(visits: Sequence[Visit], duplicate: Visit) -> int:
    """The position of the visit `duplicate` repeats (`UserHistory.add` found it): the same id, else the same item at
    the same time."""
    for position, v in enumerate(visits):
        if v.event_id == duplicate.event_id:
            return position
    same = (duplicate.ts, duplicate.item_id)
    return next(position for position, v in enumerate(visits) if (v.ts, v.item_id) == same)


def _utc(ts: float) -> datetime:
    return datetime.fromtimestamp(ts, UTC)


def broker_time(timestamp: float | None, received: float) -> float:
    """The message's publish time in unix seconds, or `received` when it has none or an impossible one: a
    producer sets its own timestamps, in microseconds by mistake, say, which no datetime can hold."""
    if timestamp and 0.0 < timestamp < MAX_BROKER_TS:
        return timestamp
    return received


def parse(message: RawMessage) -> ClickEvent | DeadLetter:
    """A valid event, or the dead letter that says why not."""
    try:
        if message.value is None:
            raise ValueError("empty message")
        event = ClickEvent.from_wire(message.value)
        # State is per partition: a user's events must all land in one, which their key decides.
        if message.key != event.user_id.encode():
            raise ValueError(f"message key {message.key!r:.80} is not the user_id {event.user_id!r}")
        return event
    except ValidationError as exc:
        reason = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'payload'}: {e['msg']}" for e in exc.errors())
    except ValueError as exc:
        reason = str(exc)
    except Exception as exc:  # whatever else a payload can trigger is still the payload's fault, not the worker's
        reason = f"{type(exc).__name__}: {exc}"
    return DeadLetter.for_payload(message.value, reason, message.topic, message.partition, message.offset)


class ClickProcessor:
    """Updates per-user state, computes features, writes them to the online store and asks the model."""

    def __init__(
        self,
        state: StateStore,
        sink: FeatureSink,
        predictor: Predictor,
        settings: StreamSettings,
        stopping: Callable[[], bool] = never,
    ) -> None:
        self.state = state
        self.sink = sink
        self.predictor = predictor
        self.settings = settings
        self.stopping = stopping  # true once the worker stops: dependency retries give up (streams.retry)
        self.isolation = Isolation(predictor, stopping)

    def _history(self, user_id: str, source: RawMessage) -> UserHistory:
        kwargs = {
            "allowed_lateness_s": self.settings.allowed_lateness_s,
            "retention_s": self.settings.history_retention_s,
            "max_events": self.settings.history_max_events,
        }
        saved = self.state.get(user_id, source)
        if saved:
            try:
                return UserHistory.from_state(saved, **kwargs)
            except UNREADABLE_STATE as exc:
                # A state this code cannot read (an old state version, a foreign record) would fail every click of
                # the user, and stop the worker at each start: the user's history starts afresh instead. A state of
                # newer code (NewerStateError) is not malformed: it stops the worker rather than be overwritten.
                log.warning("the saved history of user %s is unreadable (%r); starting it afresh", user_id, exc)
        return UserHistory(**kwargs)

    async def process(self, batch: Sequence[RawMessage]) -> BatchResult:
        return await self.complete(self.prepare(batch))

    def prepare(self, batch: Sequence[RawMessage]) -> PreparedBatch:
        """Validate, update each user's state and compute features, in arrival order. Synchronous on
        purpose: the next batch's state reads must see this one's writes."""
        result = BatchResult()
        pending: list[_Pending] = []
        histories: dict[str, UserHistory] = {}
        sources: dict[str, RawMessage] = {}
        latest_rows: dict[str, FeatureRow] = {}
        for message in batch:
            received = time.time()
            parsed = parse(message)
            if isinstance(parsed, DeadLetter):
                result.dead_letters.append(parsed)
                continue
            started = time.perf_counter()
            history = histories.get(parsed.user_id)
            if history is None:
                history = histories[parsed.user_id] = self._history(parsed.user_id, message)
            sources[parsed.user_id] = message
            visit = Visit(parsed.event_id, parsed.timestamp, parsed.item_id, parsed.latitude, parsed.longitude)
            outcome = history.add(visit, message.offset)
            # A duplicate is answered again (the first answer may have been lost in a crash) but never
            # counted twice; a too-late event is answered from what the buffer still holds.
            result.duplicates += outcome is AddOutcome.DUPLICATE
            result.late += outcome is AddOutcome.TOO_LATE
            visits = history.visits
            if outcome is AddOutcome.DUPLICATE:
                # It stands in for its original (same id, or same item and time): answered, and the row written, as
                # that event was, from the events up to it.
                position = _original(visits, visit)
                at, upto = visits[position], visits[: position + 1]
            else:
                at = visit
                if outcome is AddOutcome.TOO_LATE:
                    # Not in the buffer: answered after what the buffer holds up to its time, by time alone (the offsets
                    # of visits that old are not saved, so an order among its ties would depend on batch boundaries).
                    upto = [*visits[: bisect_right(visits, visit.ts, key=visit_time)], visit]
                else:
                    # The events before it in time, then source order: a tie sent after it (read first at a handover)
                    # is not its history.
                    upto = visits[: history.count_upto(visit, message.offset)]
            features = compute_features(upto, at)
            if outcome is not AddOutcome.TOO_LATE:
                # The user's row is the newest event's: a late event changes its windows, and a duplicate (a replay
                # after a crash, whose write may never have happened: the state is saved first) writes it again.
                newest = visits[-1]
                row = features if at == newest else compute_features(visits, newest)
                latest_rows[parsed.user_id] = (parsed.user_id, _row_time(visits), row)
            pending.append(
                _Pending(
                    message,
                    parsed,
                    features,
                    upto,
                    received,
                    (time.perf_counter() - started) * 1000.0,
                )
            )
        for user_id, history in histories.items():
            self.state.put(user_id, history.to_state(), sources[user_id])
        return PreparedBatch(result, pending, list(latest_rows.values()))

    async def complete(self, prepared: PreparedBatch) -> BatchResult:
        """Write the features and ask the model, concurrently; the batch's prediction events."""
        result, pending, rows = prepared.result, prepared.pending, prepared.rows
        if not pending:
            return result
        sequences = [p.sequence for p in pending]
        write, predict = lambda: self.sink.write(rows), lambda: self.isolation.predict(sequences)
        calls = (
            asyncio.ensure_future(retry_forever("feature write", write, self.stopping)),
            asyncio.ensure_future(retry_forever("prediction", predict, self.stopping)),
        )
        try:
            (_, feast_ms), (predictions, triton_ms) = await asyncio.gather(*calls)
        except BaseException:
            # gather leaves the other call running: a feature write retried after this worker left the group could
            # land over a newer row its partition's next owner wrote.
            for call in calls:
                call.cancel()
            raise
        predicted_at = time.time()
        broken: set[str] = set()
        refused = 0
        for item, prediction in zip(pending, predictions, strict=True):
            if isinstance(prediction, Refusal):
                refused += 1
                reason = f"no valid prediction: the model refused this click's history ({prediction.reason})"
            elif not all(map(math.isfinite, prediction.scores)):
                # The event schema refuses such a score; raising would stop the worker, which would then read the
                # same click again after every restart. Any other failure here is a bug and stops it.
                broken.add(prediction.model_version)
                reason = f"no valid prediction: model version {prediction.model_version} gave a non-finite score"
            else:
                result.predictions.append(self._event(item, prediction, predicted_at, feast_ms, triton_ms))
                continue
            m = item.message
            result.dead_letters.append(DeadLetter.for_payload(m.value, reason, m.topic, m.partition, m.offset))
        if refused:
            log.error("the model refused the histories of %d click(s); they went to the dead letters", refused)
        if broken:
            log.error("model version(s) %s gave non-finite scores; those clicks went to the dead letters", broken)
        return result

    def _event(
        self, item: _Pending, prediction: Prediction, predicted_at: float, feast_ms: float, triton_ms: float
    ) -> EncodedPrediction:
        explanation = None
        if prediction.attribution is not None:
            recent = list(item.sequence)[-len(prediction.attribution) :]
            weights = prediction.attribution[-len(recent) :] if recent else []
            # As trainer.model.explain weighs them: 0 at padding, so an event of weight 0 is not named.
            weighed = [(v, w) for v, w in zip(recent, weights, strict=True) if w > 0]
            ranked = sorted(weighed, key=lambda pair: -pair[1])[:3]
            explanation = [{"event_id": v.event_id, "item_id": v.item_id, "weight": w} for v, w in ranked]
        event = item.event
        value = prediction_wire(
            {
                "event_id": event.event_id,
                "user_id": event.user_id,
                "items": [{"item_id": i, "score": s} for i, s in zip(prediction.items, prediction.scores, strict=True)],
                "model_name": self.predictor.model_name,
                "model_version": prediction.model_version,
                "features": item.features,
                "event_time": event.event_time,
                "published_at": _utc(item.message.timestamp),
                "received_at": _utc(item.received_at),
                "predicted_at": _utc(predicted_at),
                "latency": {
                    "kafka_in_ms": max(0.0, (item.received_at - item.message.timestamp) * 1000.0),
                    "features_ms": item.features_ms,
                    "feast_write_ms": feast_ms,
                    "triton_ms": triton_ms,
                    "total_ms": max(0.0, (predicted_at - item.message.timestamp) * 1000.0),
                },
                "explanation": explanation,
            }
        )
        return EncodedPrediction(event.event_id, event.user_id, item.features, value)
