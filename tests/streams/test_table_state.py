"""TableState's contract with a faust table: writes bind the event that carried the user and queue a changelog
record in faust's format for the worker to send, and expiry queues tombstones for the partition each user was
written to."""

import json
from types import SimpleNamespace

import faust
import orjson
import pytest
from faust.serializers import codecs
from faust.types import TP

from features.history import UserHistory, Visit
from streams.app import TableState, user_table
from streams.output import OutputMessage
from streams.processor import RawMessage

CHANGELOG = "app-user-history-changelog"


class RecordingTable(dict):
    """The parts of faust.Table (and its store, `data`) that TableState uses, recording persisted offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.data = self
        self.persisted: dict = {}

    def set_persisted_offset(self, tp, offset: int) -> None:
        self.persisted[tp] = offset


def tombstones(state: TableState) -> list[tuple[int, str]]:
    records = state.take_changelog()
    assert all(r.topic == CHANGELOG and r.value is None for r in records)
    return [(r.partition, orjson.loads(r.key)) for r in records]


def event(partition: int, offset: int):
    return SimpleNamespace(message=SimpleNamespace(partition=partition, offset=offset))


def message(partition: int, offset: int) -> RawMessage:
    return RawMessage(b"", b"", "clicks", partition, offset, 0.0)


def state_at(ts: float) -> dict:
    history = UserHistory()
    history.add(Visit(f"e{ts}", ts, "i", 0.0, 0.0))
    return history.to_state()


def test_reads_and_writes_bind_the_event_of_that_user():
    table, bound = RecordingTable(), []
    state = TableState(table, CHANGELOG)
    events = [event(0, 10), event(3, 7)]
    state.bind(events, bound.append)
    state.put("u", state_at(100.0), message(3, 7))
    assert bound == [events[1]]
    assert state.get("u", message(0, 10))["partition"] == 3
    assert bound[-1] is events[0]
    # Stored (and sent to the changelog) once encoded, as JSON bytes.
    assert json.loads(table["u"]) == {**state_at(100.0), "partition": 3}
    assert state.take_changelog() == [OutputMessage(CHANGELOG, b'"u"', table["u"], 3)]
    assert state.take_changelog() == []  # taken once


def test_values_that_faust_encoded_read_back():
    """Stores and changelogs written while the table's values went through faust's json codec stay readable."""
    table = RecordingTable()
    table["old"] = codecs.dumps("json", {**state_at(100.0), "partition": 2})
    state = TableState(table, CHANGELOG)
    state.bind([event(2, 0)], lambda e: None)
    assert state.get("old", message(2, 0)) == {**state_at(100.0), "partition": 2}
    assert UserHistory.from_state(state.get("old", message(2, 0))).last_event_ts == 100.0


def written(users: dict[str, float], partition: int = 1) -> tuple[RecordingTable, TableState]:
    """A table holding these users (with their newest event times) in one partition, the changelog taken."""
    table = RecordingTable()
    state = TableState(table, CHANGELOG)
    state.bind([event(partition, i) for i in range(len(users))], lambda e: None)
    for i, (user, ts) in enumerate(users.items()):
        state.put(user, state_at(ts), message(partition, i))
    state.take_changelog()
    return table, state


def test_expiry_removes_idle_users_and_tombstones_their_partition():
    table, state = written({"idle": 100.0, "active": 5000.0})
    assert state.expire(idle_s=1000.0, budget=100) == ["idle"]
    assert set(table) == {"active"}
    assert tombstones(state) == [(1, "idle")]


def test_a_partition_replaying_an_old_backlog_keeps_its_users():
    table = RecordingTable()
    state = TableState(table, CHANGELOG)
    state.bind([event(0, 0), event(0, 1), event(2, 0)], lambda e: None)
    state.put("backlog", state_at(100.0), message(0, 0))  # partition 0 is a year behind partition 2
    state.put("backlog-idle", state_at(10.0), message(0, 1))
    state.put("live", state_at(100.0 + 365 * 86400.0), message(2, 0))
    state.take_changelog()
    assert state.expire(idle_s=50.0, budget=100) == ["backlog-idle"]
    assert set(table) == {"backlog", "live"} and tombstones(state) == [(0, "backlog-idle")]


def test_expiry_keeps_the_users_it_is_told_to_keep():
    table = RecordingTable()
    state = TableState(table, CHANGELOG)
    state.bind([event(1, 0), event(1, 1), event(1, 2)], lambda e: None)
    state.put("idle", state_at(100.0), message(1, 0))
    state.put("idle-busy", state_at(100.0), message(1, 1))
    state.put("active", state_at(5000.0), message(1, 2))
    assert state.expire(idle_s=1000.0, budget=100, keep={"idle-busy"}) == ["idle"]
    assert state.holds("idle-busy") and not state.holds("idle")


def test_the_worker_table_stores_and_sends_the_bytes_it_is_given():
    """value_type=bytes is what keeps faust from decoding the stored JSON into a dict on reads (TableState decodes
    it) and from encoding it again for the store and the changelog."""
    table = user_table(faust.App("clickcast-table-test", store="memory://"), partitions=4)
    schema = table.changelog_topic.schema
    assert (table.key_serializer, table.value_serializer) == ("json", "raw")
    assert (schema.key_serializer, schema.value_serializer) == ("json", "raw")  # keys as stores hold them already
    value = orjson.dumps({**state_at(100.0), "partition": 1})
    assert table.data._encode_value(value) == value and table.data._decode_value(value) == value


def test_delivered_changelog_offsets_become_the_stores_persisted_offsets_and_never_move_back():
    from faust.types import TP

    table = RecordingTable()
    state = TableState(table, CHANGELOG)
    state.persisted({(CHANGELOG, 0): 41, (CHANGELOG, 2): 7, ("predictions", 0): 999})
    assert table.persisted == {TP(CHANGELOG, 0): 41, TP(CHANGELOG, 2): 7}  # the answers' offsets are not the store's
    state.persisted({(CHANGELOG, 0): 30, (CHANGELOG, 2): 9})  # an earlier send settled late
    assert table.persisted == {TP(CHANGELOG, 0): 41, TP(CHANGELOG, 2): 9}


def test_changelog_records_are_what_faust_itself_would_send():
    """Same keys as faust's own sends (so compaction and tombstones match records written before), to the topic
    faust recovers the table from."""
    table = user_table(faust.App("clickcast-table-test", store="memory://"), partitions=4)
    state = TableState(table, table.changelog_topic.get_topic_name())
    users = ["u1", "é-ü", 'a"b\\c', "😀"]
    state.bind([event(2, i) for i in range(len(users))], lambda e: None)
    for i, user in enumerate(users):
        state.put(user, state_at(100.0), message(2, i))
    records = state.take_changelog()
    assert [r.key for r in records] == [table.changelog_topic.prepare_key(u, table.key_serializer)[0] for u in users]
    # What recovery writes into the store, as the store's own writes encode the key.
    assert [r.key for r in records] == [table.data._encode_key(u) for u in users]
    assert {(r.topic, r.partition) for r in records} == {("clickcast-table-test-user-history-changelog", 2)}
    assert all(orjson.loads(r.value) == {**state_at(100.0), "partition": 2} for r in records)


def test_expiry_reads_a_slice_a_round_against_the_clock_of_the_writes():
    # The last write sets the partition's clock before the sweep reads that user.
    table, state = written({"idle-1": 100.0, "idle-2": 100.0, "active": 5000.0})
    assert state.expire(idle_s=1000.0, budget=1) == ["idle-1"]
    assert set(table) == {"idle-2", "active"}
    assert state.expire(idle_s=1000.0, budget=1) == ["idle-2"]
    assert state.expire(idle_s=1000.0, budget=1) == []
    assert tombstones(state) == [(1, "idle-1"), (1, "idle-2")]


def test_after_a_restart_expiry_learns_each_partitions_clock_and_keeps_users_until_it_knows():
    """A worker that restarts has written nothing yet: a user read before its partition's newest stays for a pass."""
    table, _ = written({"idle": 100.0, "active": 5000.0})
    state = TableState(table, CHANGELOG)
    assert state.expire(idle_s=1000.0, budget=1) == []  # read first: no clock yet beyond its own time
    assert state.expire(idle_s=1000.0, budget=1) == []  # the pass ends with the partition's newest user
    assert state.expire(idle_s=1000.0, budget=1) == ["idle"]  # the next pass knows the clock


@pytest.mark.parametrize("store", ["rocksdb://", "memory://"])
def test_expiry_on_fausts_own_stores(store, tmp_path):
    """The stores the worker runs on, not stand-ins: RocksDB's per-partition stores (keys as the table's JSON
    serializer writes them, faust's offset record beside them) and the memory store."""
    app = faust.App("app", store=store, datadir=str(tmp_path))  # its changelog topic: CHANGELOG
    table = user_table(app, 2)
    topic = table.changelog_topic.get_topic_name()
    users = {"idle": {**state_at(100.0), "partition": 0}, "active": {**state_at(5000.0), "partition": 0}}
    # Partition 1 is a standby here: its idle user is its owner's to expire (a tombstone from here would land in
    # the owner's partition).
    users["standby"] = {**state_at(100.0), "partition": 1}
    users["standby-newest"] = {**state_at(9000.0), "partition": 1}
    app.assignor.assigned_actives = lambda: {TP(topic, 0)}
    if store == "rocksdb://":
        for partition in (0, 1):
            table.data._db_for_partition(partition)[table.data.offset_key] = b"7"
        for user, value in users.items():
            table.data._db_for_partition(value["partition"])[orjson.dumps(user)] = orjson.dumps(value)
    else:
        for user, value in users.items():
            table.data[user] = orjson.dumps(value)
    state = TableState(table, topic)
    assert state.expire(idle_s=1000.0, budget=10) == ["idle"]
    assert not state.holds("idle") and state.holds("active") and state.holds("standby")
    assert tombstones(state) == [(0, "idle")]


def test_an_unreadable_saved_history_reads_as_none_and_expiry_passes_it_by(caplog):
    table, state = written({"idle": 100.0, "active": 5000.0})
    table["not-json"] = b"\xff{"
    table["no-partition"] = orjson.dumps(state_at(100.0))
    table["not-an-object"] = b"[1, 2]"
    assert state.get("not-json", message(1, 0)) is None
    assert state.expire(idle_s=1000.0, budget=100) == ["idle"]  # raised in the expiry timer, it stopped the worker
    assert tombstones(state) == [(1, "idle")]
    assert {"not-json", "no-partition", "not-an-object"} <= set(table)
    assert caplog.text.count("expiry skips user") == 3
