"""TableSweep: the user table a slice at a time, on the memory store's dict and on faust's RocksDB stores."""

from types import SimpleNamespace

import orjson
import pytest
from faust.types import TP

from streams.table_sweep import TableSweep
from streams.testing import RocksStore

CHANGELOG = RocksStore.CHANGELOG


def passes(sweep: TableSweep, budget: int, n: int) -> list[list[list[str]]]:
    """The keys of each slice, grouped into the next `n` passes."""
    out = []
    for _ in range(n):
        slices, done = [], sweep.passes + 1
        while sweep.passes < done:
            assert len(slices) < 100, "a pass that does not end"
            slices.append([key for key, _ in sweep.next_slice(budget)])
        out.append(slices)
    return out


def test_a_dict_store_is_read_in_slices_each_user_once_a_pass():
    store = {f"u{i}": b"{}" for i in range(5)}
    sweep = TableSweep(SimpleNamespace(data=store))
    assert sweep.next_slice(2) == [("u0", b"{}"), ("u1", b"{}")]
    del store["u2"]  # gone between two slices: skipped
    store["late"] = b"{}"  # came during the pass: the next pass reads it
    assert [k for k, _ in sweep.next_slice(2)] == ["u3"]
    assert [k for k, _ in sweep.next_slice(2)] == ["u4"]  # the pass ends short
    assert passes(sweep, 2, 1) == [[["u0", "u1"], ["u3", "u4"], ["late"]]]


@pytest.fixture
def rocks(tmp_path):
    stores = []

    def make(partitions: dict[int, list[str]], active: set[int]) -> RocksStore:
        store = RocksStore(tmp_path / str(len(stores)), partitions, active)
        for partition, users in partitions.items():
            for user in users:
                store.put(partition, user, orjson.dumps({"user": user}))
        stores.append(store)
        return store

    yield make
    for store in stores:
        store.close()


def test_rocksdb_slices_resume_at_the_next_key_across_partitions(rocks):
    store = rocks({0: ["a", "b", "c"], 1: ["d", "e"], 2: ["standby"]}, active={0, 1})
    sweep = TableSweep(SimpleNamespace(data=store))
    # Keys come back decoded, values as stored; the offset record and a standby partition are never read.
    assert sweep.next_slice(2) == [("a", b'{"user":"a"}'), ("b", b'{"user":"b"}')]
    assert passes(sweep, 2, 2) == [[["c", "d"], ["e"]], [["a", "b"], ["c", "d"], ["e"]]]


def test_a_partition_revoked_mid_pass_is_left_and_the_pass_goes_on(rocks):
    store = rocks({0: ["a", "b", "c"], 1: ["d", "e"], 3: ["f"]}, active={0, 1, 3})
    sweep = TableSweep(SimpleNamespace(data=store))
    assert [k for k, _ in sweep.next_slice(2)] == ["a", "b"]
    store.active.discard(TP(CHANGELOG, 0))  # faust closes it between two slices
    store._dbs.pop(0).close()
    assert [k for k, _ in sweep.next_slice(2)] == ["d", "e"]
    assert [k for k, _ in sweep.next_slice(2)] == ["f"]
    assert sweep.passes == 1


def test_a_user_written_or_deleted_between_slices(rocks):
    store = rocks({0: ["a", "c", "e"]}, active={0})
    sweep = TableSweep(SimpleNamespace(data=store))
    assert [k for k, _ in sweep.next_slice(1)] == ["a"]
    del store._dbs[0][orjson.dumps("c")]
    store._dbs[0][orjson.dumps("d")] = b"{}"  # after the cursor: read in this pass
    store._dbs[0][orjson.dumps("0")] = b"{}"  # before it: in the next
    assert passes(sweep, 1, 2) == [[["d"], ["e"]], [["0"], ["a"], ["d"], ["e"]]]


def test_a_slice_that_ends_a_partition_or_the_pass_exactly(rocks):
    store = rocks({0: ["a", "b"], 1: ["c", "d"]}, active={0, 1})
    sweep = TableSweep(SimpleNamespace(data=store))
    assert [k for k, _ in sweep.next_slice(2)] == ["a", "b"]  # the partition's last user, then its offset record
    assert sweep.passes == 0
    assert [k for k, _ in sweep.next_slice(2)] == ["c", "d"]
    assert sweep.passes == 1  # the pass ends with a full slice, in the same call
    assert [k for k, _ in sweep.next_slice(2)] == ["a", "b"]
