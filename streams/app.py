"""The faust-streaming application: one consumer group of workers over the `clicks` topic.

Per micro-batch: parse + validate, update per-user history in a changelog-backed table and compute
features (in arrival order), then write the features to Feast and ask Triton (concurrently; overlapping with the
next batches when more than one may be in flight) and send predictions and dead letters in arrival order
(`streams.output`); the batch's table changelog records leave at once, as faust would send them. Batches form
naturally (`streams.inflight`): a click starts at once when a slot is free, and clicks wait only while every slot is
busy, then go as one larger batch. Each message holds an extra reference until its batch's answers and changelog
records are delivered, so its offset is committed only then: at-least-once end to end, state included.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import logging
import os
import shutil
import time
import weakref
from collections.abc import Callable, Container, Sequence
from pathlib import Path
from typing import IO

import faust
import orjson
from faust.streams import _current_event
from faust.types import TP, EventT

from features.history import UNREADABLE_STATE, UserHistory
from streams.changelog import ChangelogSender
from streams.expiry import IdleExpiry
from streams.feature_sink import FeastSink
from streams.inflight import InFlight
from streams.kafka_config import faust_broker_options, worker_client_id
from streams.offsets import OrderedCommitApp
from streams.output import Offsets, OutputMessage, OutputProducer
from streams.predictor import TritonPredictor
from streams.processor import ClickProcessor, RawMessage, broker_time
from streams.retry import Stopping, give_up_when, retry_forever
from streams.settings import Settings
from streams.stats import WorkerStats
from streams.table_sweep import TableSweep
from streams.watchdog import exit_unless_stopped

log = logging.getLogger(__name__)

REBALANCE_TIMEOUT_S = 60.0  # faust's default, set here because the grace below depends on it
# The share of it a rebalance waits on a failing dependency before the worker gives up: the retries notice it up to 10 s
# late, and the revocation still commits and drains the changelog after its clicks are done.
REBALANCE_GRACE = 1 / 3


def table_dir(settings: Settings) -> Path:
    return (settings.stream.data_dir or settings.run_dir / "faust") / settings.stream.app_id


def claim_table_dir(settings: Settings) -> IO[bytes] | None:
    """Hold this worker's table store for the life of the process (keep the returned file open); OSError when
    another worker on this machine holds it. Two workers on one store would read and write each other's tables.
    The lock file sits beside the store, which `reset_stale_tables` may delete and rebuild. None for a store that
    keeps its tables in memory: workers on one machine share nothing then."""
    if settings.stream.store.startswith("memory:"):
        return None
    directory = table_dir(settings)
    directory.parent.mkdir(parents=True, exist_ok=True)
    lock = (directory.parent / f"{directory.name}.lock").open("ab")
    try:
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        lock.close()
        raise OSError(
            f"the table store {directory} is in use by another worker on this machine; give each worker "
            "its own CLICKCAST_STREAM__DATA_DIR"
        ) from None
    return lock


def reset_stale_tables(settings: Settings) -> bool:
    """Drop local table stores written against another Kafka cluster (e.g. after the stack's data was
    wiped): they are only a cache of the changelog topics, and faust refuses to start on them. ConnectionError
    when no broker answers."""
    from streams.kafka_config import ensure_reachable

    directory = table_dir(settings)
    cluster_id = ensure_reachable(settings.kafka).cluster_id
    marker = directory / "kafka-cluster-id"
    stale = directory.exists() and (not marker.exists() or marker.read_text() != cluster_id)
    if stale:
        log.warning("table store in %s belongs to another Kafka cluster; rebuilding it from the changelog", directory)
        shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    marker.write_text(cluster_id)
    return stale


def user_table(app: faust.App, partitions: int) -> faust.Table:
    """The per-user history table (TableState's), partitioned like the clicks topic."""
    return app.Table(
        "user-history",
        partitions=partitions,
        # Values are JSON objects that TableState encodes itself (orjson, as faust's json codec does), so they are
        # bytes to the table (value_type): faust would serialise each write twice, once for the store and once for
        # the changelog. Stores and changelogs from before read the same. The table's own serializers override the
        # changelog schema's, so keys are JSON strings in both, as they always were.
        value_type=bytes,
        schema=faust.Schema(key_type=str, key_serializer="json", value_serializer="raw"),
    )


def create_app(settings: Settings) -> faust.App:
    stream = settings.stream
    app = OrderedCommitApp(
        stream.app_id,
        **faust_broker_options(settings.kafka),
        store=stream.store,
        datadir=str(table_dir(settings)),
        topic_partitions=settings.topics.partitions,
        topic_replication_factor=settings.topics.replication_factor,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        producer_acks=-1,
        # Batches are processed in milliseconds; a stuck dependency is retried inside the batch,
        # so allow long gaps between polls before the group evicts the worker.
        broker_max_poll_interval=300.0,
        # How long a rebalance waits for a member to give its partitions up: dependency retries give up (and stop the
        # worker) within REBALANCE_GRACE of it (streams.retry.give_up_when).
        broker_rebalance_timeout=REBALANCE_TIMEOUT_S,
        broker_client_id=worker_client_id(os.getpid()),
    )
    clicks = app.topic(settings.topics.clicks, key_serializer="raw", value_serializer="raw")
    users = user_table(app, settings.topics.partitions)
    sink = FeastSink(settings)
    sink.open()
    predictor = TritonPredictor(settings.triton, explain=stream.explain)
    state = TableState(users, users.changelog_topic.get_topic_name())

    # Dependency waits give up then: faust's stop and a rebalance wait for every click they hold.
    stopping = give_up_when(
        lambda: app.should_stop,
        lambda: app.rebalancing_count if app.rebalancing else None,
        REBALANCE_GRACE * REBALANCE_TIMEOUT_S,
    )

    processor = ClickProcessor(state, sink, predictor, stream, stopping=stopping)
    output = OutputProducer(settings.kafka)
    # Undelivered changelog records stop the worker as a failed batch does (stop_worker is defined below).
    changelog = ChangelogSender(
        state, output, on_error=lambda exc: stop_worker(exc, "table changelog records undelivered")
    )
    expiry = IdleExpiry(
        state, sink.delete, stream.idle_user_ttl_s, slice_users=stream.expiry_slice_users, on_expired=changelog.send
    )
    stats = WorkerStats()
    topics = settings.topics

    @app.task
    async def connect_triton() -> None:
        await retry_forever("connecting to triton", predictor.start)
        log.info("connected: feast %s store, triton model %s", settings.feast.online_store, predictor.shape)

    def start(events: list[EventT]):
        """A batch's synchronous part (state, features), in arrival order; returns the rest as a completion."""
        batch = [
            RawMessage(
                value=e.value,
                key=e.key,
                topic=e.message.topic,
                partition=e.message.partition,
                offset=e.message.offset,
                timestamp=broker_time(e.message.timestamp, time.time()),
            )
            for e in events
        ]
        state.bind(events, _set_current_event)
        prepared = processor.prepare(batch)
        expiry.preparing(row[0] for row in prepared.rows)
        # The changelog now, in batch order: by the time the answers are ready it is on the broker, and waiting for
        # it costs the batch nothing.
        return functools.partial(finish, prepared, changelog.send(), events)

    crashing: list[asyncio.Future] = []

    def stop_worker(exc: BaseException, what: str = "a batch failed") -> None:
        """Stop the worker when a batch fails (or what `what` says fails). faust would restart the agent on the same
        stream, reading on past the failed batch's clicks: never acknowledged, they would hold their partitions'
        committed offsets back for good. A worker that stops (with an error) leaves them to the group, which hands them
        out again."""
        if not crashing:
            if isinstance(exc, Stopping):  # asked to stop, not a failure: crashing ends faust's wait for the clicks
                log.warning("%s; its clicks are left unanswered, for the group to hand out again", exc)
            else:
                log.critical("%s (%r); stopping the worker so that its clicks are read again", what, exc)
            crashing.append(asyncio.ensure_future(app.crash(exc)))
            exit_unless_stopped(stream.failed_stop_grace_s, "stopping after a failed batch")

    @app.agent(clicks)
    async def process_clicks(stream_):
        inflight = InFlight(start, depth=stream.max_batches_in_flight, batch_max=stream.batch_max, on_error=stop_worker)
        try:
            # One event at a time, not faust's take_events: that wakes every `within` even when idle (1 ms:
            # 15% of a core for an idle worker) and holds a lone click until the next wake-up.
            async for event in stream_.events():
                # The stream acks an event when it moves on, or ends (a stop while Triton is down); one more reference
                # holds its offset back until its answer is on the broker.
                event.message.incref()
                await _ready(predictor, stopping)
                await inflight.add((event,))
        except Exception as exc:
            stop_worker(exc)
            raise
        finally:
            inflight.cancel()  # unacknowledged: the group hands those clicks out again

    async def finish(
        prepared, changelog_sent: asyncio.Task, events: list[EventT], previous_sent, sent
    ) -> Callable[[], None]:
        try:
            result = await processor.complete(prepared)
        finally:
            expiry.written(row[0] for row in prepared.rows)
        if previous_sent is not None:
            await previous_sent  # answers and state leave in the order the clicks came
        messages = [OutputMessage(topics.predictions, p.user_id.encode(), p.value) for p in result.predictions]
        messages += [OutputMessage(topics.dead_letters, None, d.to_wire()) for d in result.dead_letters]
        delivered = await output.send(messages)
        sent.set_result(None)
        # Wait for delivery, so a crash before this point cannot lose an answer or a state change.
        await delivered
        await changelog_sent

        def acknowledge() -> None:
            # InFlight runs this after the previous batch's: faust commits past one unacknowledged offset at the
            # head of a partition, so acknowledgements must not overtake each other.
            for event in events:
                event.ack()
            stats.record(result)

        return acknowledge

    @app.timer(interval=10.0)
    async def report() -> None:
        stats.log_and_reset(log)

    @app.timer(interval=stream.expiry_interval_s)
    async def expire_idle_users() -> None:
        # Not from a revocation until the tables are recovered: a partition being handed over is its next owner's
        # to expire, and a store still recovering may not hold a user's newest history yet.
        if not app.rebalancing:
            await expiry.run()

    @app.on_partitions_revoked.connect
    async def on_partitions_revoked(app: faust.App, revoked, **kwargs) -> None:
        expiry.forget_undeleted()
        # Before faust hands the partitions over: their next owner recovers from what the changelog holds, and may
        # write a returning user's row, which an expiry delete still on its way would remove.
        await asyncio.gather(changelog.drain(), expiry.settle())

    @app.on_before_shutdown.connect
    async def flush_answers(app: faust.App, **kwargs) -> None:
        changelog.stopping = True
        await changelog.drain()
        loop = asyncio.get_running_loop()
        undelivered = await loop.run_in_executor(None, output.close)
        # Undelivered answers' clicks were not acknowledged: the group hands them out again.
        log.log(logging.WARNING if undelivered else logging.INFO, "answers flushed, %d undelivered", undelivered)
        # No batch can finish once the output is closed, so the dependencies go too, explicitly rather than at the
        # interpreter's exit: the store's writes queued before this land first (one thread).
        closed = await asyncio.gather(predictor.close(), loop.run_in_executor(None, sink.close), return_exceptions=True)
        failures = [repr(c) for c in closed if isinstance(c, BaseException)]
        if failures:  # logged, not raised: faust's own stop (commits, leaving the group) comes after this
            log.warning("closing the triton channel and the feature store: %s", "; ".join(failures))
        else:
            log.info("closed the feature store and the triton channel")

    app.clickcast_stats = stats  # for tests and the live view
    return app


def _set_current_event(event: EventT) -> None:
    """Make `event` what faust's tables see as the current event, through the context variable only:
    the stream's own `current_event` attribute is the event it iterates and acks, and must stay untouched."""
    _current_event.set(weakref.ref(event))


async def _ready(predictor: TritonPredictor, stopping: Callable[[], bool]) -> None:
    while predictor.shape is None:  # the first batch can arrive before Triton's config is read
        if stopping():  # the click is not acknowledged, so faust's stop would wait for it for as long as Triton does
            raise Stopping("the worker stops before Triton answered")
        await asyncio.sleep(0.05)


class TableState:
    """The processor's state store on a faust table.

    Writes happen after the whole micro-batch was read, so faust's notion of "the current event"
    has moved on; each write re-binds the event that carried the user, so the RocksDB partition is the one of
    that user's clicks partition. The partition is kept in the value so that expiry (outside any event) can send
    the tombstone to the right place.

    Writes go to the table's store only; their changelog records (faust's format: JSON string keys, the value bytes,
    the clicks partition) queue here until the worker sends them on its own producer (`take_changelog`, by
    `streams.changelog.ChangelogSender` as a batch starts and right after expiry), and the offsets they got become
    the store's persisted offsets (`persisted`), as faust records them for its own sends. faust's aiokafka path cost
    a quarter of a worker's CPU at full speed.
    """

    def __init__(self, table: faust.Table, changelog_topic: str) -> None:
        self.table = table
        self.changelog_topic = changelog_topic
        self._changelog: list[OutputMessage] = []
        self._persisted: dict[int, int] = {}
        self._events: dict[tuple[int, int], EventT] = {}
        self._bind: Callable[[EventT], None] | None = None
        self.sweep = TableSweep(table)
        # Each partition's newest event time, from the writes and what expiry has read: at most the true one (right
        # after a restart, before either saw a partition's newest user), so expiry errs on keeping a user.
        self._clock: dict[int, float] = {}

    def bind(self, events: Sequence[EventT], set_current_event: Callable[[EventT], None]) -> None:
        self._events = {(e.message.partition, e.message.offset): e for e in events}
        self._bind = set_current_event

    def get(self, user_id: str, source: RawMessage) -> dict | None:
        self._bind(self._events[(source.partition, source.offset)])  # RocksDB reads the event's partition
        # From the store itself: the table's own get asks the store whether it holds the key, then reads it (two
        # RocksDB reads for one, ~4% of the worker's loop at 1,000 events/s).
        saved = self.table.data.get(user_id)
        if saved is None:
            return None
        try:
            return orjson.loads(saved)
        except orjson.JSONDecodeError as exc:  # the processor's reason for starting afresh: an unreadable state
            log.warning("the saved history of user %s is not JSON (%s); starting it afresh", user_id, exc)
            return None

    def put(self, user_id: str, state: dict, source: RawMessage) -> None:
        self._bind(self._events[(source.partition, source.offset)])
        value = orjson.dumps({**state, "partition": source.partition})
        self.table.data[user_id] = value  # the store only: the changelog record goes out with the batch
        self._queue(user_id, value, source.partition)
        self._advance(source.partition, UserHistory.newest_ts_of_state(state))

    def _advance(self, partition: int, ts: float | None) -> None:
        if ts is not None and ts > self._clock.get(partition, float("-inf")):
            self._clock[partition] = ts

    def _queue(self, user_id: str, value: bytes | None, partition: int) -> None:
        # Keys as faust's json codec writes them (orjson), so that compaction and tombstones match older records.
        self._changelog.append(OutputMessage(self.changelog_topic, orjson.dumps(user_id), value, partition))

    def take_changelog(self) -> list[OutputMessage]:
        """The changelog records of the writes and expiries since the last call, in order."""
        records, self._changelog = self._changelog, []
        return records

    def persisted(self, offsets: Offsets) -> None:
        """Record delivered changelog offsets in the store, so that a restart recovers only what came after them."""
        for (topic, partition), offset in offsets.items():
            if topic == self.changelog_topic and offset > self._persisted.get(partition, -1):
                self._persisted[partition] = offset
                self.table.data.set_persisted_offset(TP(topic, partition), offset)

    def holds(self, user_id: str) -> bool:
        return user_id in self.table.data

    @property
    def passes(self) -> int:
        return self.sweep.passes

    def expire(self, idle_s: float, budget: int, keep: Container[str] = ()) -> list[str]:
        """Remove (and return) the users among the table's next `budget` (`TableSweep`) whose newest event is more
        than `idle_s` older than their partition's newest event, except those in `keep`. Each partition keeps its own
        event-time clock: one replaying an old backlog must not lose its users because another partition is live."""
        users = []
        active = self.sweep.active_partitions()
        for key, saved in self.sweep.next_slice(budget):
            try:
                value = orjson.loads(saved)
                partition, ts = int(value["partition"]), UserHistory.newest_ts_of_state(value) or 0.0
            except UNREADABLE_STATE as exc:
                # Left alone: raised in expiry's timer, it would stop the worker at every start. The user's next
                # click starts its history afresh and writes a readable state.
                log.warning("expiry skips user %s: its saved history is unreadable (%r)", key, exc)
                continue
            if active is not None and partition not in active:
                continue  # a standby's copy: deleting it here would send a tombstone into another worker's partition
            self._advance(partition, ts)
            users.append((key, partition, ts))
        idle = [(key, p) for key, p, ts in users if ts < self._clock[p] - idle_s and key not in keep]
        for key, partition in idle:
            self._queue(key, None, partition)
            del self.table.data[key]
        return [key for key, _ in idle]
