import uuid
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from features.compute import FEATURE_FIELDS, compute_features
from features.history import Visit
from features.store import apply_definitions, build_store, read_features
from features.writers import FeastApiWriter, open_writer
from streams.settings import Settings, get_settings

TS_2012 = 1333324800.0  # replayed data is from 2012: nothing may expire it on read


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("redis", marks=pytest.mark.integration),
    ]
)
def store(request, tmp_path):
    kind = request.param
    settings = Settings(run_dir=tmp_path, redis=get_settings().redis)
    # A project of its own, so a shared Redis keeps no trace of the test after teardown.
    settings = settings.model_copy(
        update={
            "feast": settings.feast.model_copy(update={"online_store": kind, "project": f"t{uuid.uuid4().hex[:12]}"})
        }
    )
    if kind == "redis":
        import redis

        try:
            redis.Redis(host=settings.redis.host, port=settings.redis.port).ping()
        except redis.ConnectionError as exc:
            pytest.fail(f"no Redis at {settings.redis.connection_string} (start the stack): {exc}")
    store = build_store(settings)
    apply_definitions(store)
    yield store
    store.teardown()


def features_at(event_id: str, ts: float, lat: float, lon: float, history=()) -> dict:
    return compute_features(list(history), Visit(event_id, ts, f"poi-{event_id}", lat, lon))


def test_write_then_read_same_values(store):
    a1 = Visit("a1", TS_2012, "p1", 40.70, -74.00)
    rows = [
        ("alice", TS_2012, features_at("a1", TS_2012, 40.70, -74.00)),
        ("bob", TS_2012 + 30, features_at("b1", TS_2012 + 30, 40.75, -73.98)),
        ("alice", TS_2012 + 600, features_at("a2", TS_2012 + 600, 40.72, -74.01, [a1])),
    ]
    writer = open_writer(store)
    assert writer.write(rows) == 2  # alice's two rows collapse to her newest

    got = read_features(store, ["bob", "alice", "nobody"])
    assert [g["user_id"] for g in got] == ["bob", "alice", "nobody"]
    for g, expected in ((got[0], rows[1][2]), (got[1], rows[2][2])):
        for name, typ in FEATURE_FIELDS:
            assert g[name] == expected[name], name
            assert isinstance(g[name], typ), name
    assert got[1]["count_10m"] == 1 and got[1]["count_1h"] == 2  # really the newer of alice's rows
    assert all(got[2][name] is None for name, _ in FEATURE_FIELDS)


def test_later_batch_overwrites_and_apply_is_idempotent(store):
    writer = open_writer(store)
    writer.write([("carol", TS_2012, features_at("c1", TS_2012, 40.70, -74.00))])
    apply_definitions(store)  # re-applying must not drop the online table
    newer = features_at("c2", TS_2012 + 3600, 40.80, -73.90)
    writer.write([("carol", TS_2012 + 3600, newer)])
    (got,) = read_features(store, ["carol"])
    assert got["geohash6"] == newer["geohash6"]
    assert got["hour_sin"] == newer["hour_sin"]


def test_write_rejects_incomplete_features_and_ignores_empty(store):
    writer = open_writer(store)
    assert writer.write([]) == 0
    assert read_features(store, []) == []
    incomplete = features_at("d1", TS_2012, 40.7, -74.0)
    del incomplete["geohash6"]
    with pytest.raises(ValueError, match="geohash6"):
        writer.write([("dave", TS_2012, incomplete)])


def test_direct_writer_reads_back_like_feasts_own_write(store):
    """The store's direct writer and Feast's online_write_batch leave rows Feast reads identically."""
    direct, feast_api = open_writer(store), FeastApiWriter(store)
    assert type(direct) is not FeastApiWriter  # both test stores have a direct writer
    history = [Visit("e0", TS_2012 - 300, "p0", 40.71, -74.01)]
    rows = [(f"u{i}", TS_2012 + i, features_at(f"e{i}", TS_2012 + i, 40.7 + i / 100, -74.0, history)) for i in range(5)]
    direct.write([(f"direct-{u}", ts, f) for u, ts, f in rows])
    feast_api.write([(f"api-{u}", ts, f) for u, ts, f in rows])
    got_direct = read_features(store, [f"direct-{u}" for u, _, _ in rows])
    got_api = read_features(store, [f"api-{u}" for u, _, _ in rows])
    for a, b in zip(got_direct, got_api, strict=True):
        assert {k: v for k, v in a.items() if k != "user_id"} == {k: v for k, v in b.items() if k != "user_id"}
    direct.close()


def test_sqlite_rows_equal_feasts_own_column_for_column(tmp_path):
    """Not only what Feast reads back: the direct writer stores the same value, value_text and event_ts in every
    (user, feature) row as Feast's online_write_batch, so Feast's filters on value_text see the same table (created_ts
    aside: the writer keeps the exact time there, which Feast's reader does not read)."""
    import sqlite3

    from feast.infra.online_stores.helpers import compute_table_id

    from features.repo import FEATURE_VIEW_NAME
    from features.writers.sqlite import SqliteWriter

    history = [Visit("e0", TS_2012 - 300, "p0", 40.71, -74.01)]
    rows = [(f"u{i}", TS_2012 + i, features_at(f"e{i}", TS_2012 + i, 40.7 + i / 100, -74.0, history)) for i in range(3)]
    # Past the writer's shortcuts: a count beyond its cached encodings, a negative one, a time that rounds into the
    # next second.
    unusual = {**rows[0][2], "count_24h": 5000, "count_1h": -3, "seconds_since_prev": 0.1}
    # Values of other types than the features': Feast stores the feature's type (text "1", "7", "5.0").
    unusual |= {"count_10m": True, "distinct_items_1h": np.int64(7), "mean_gap_s": 5}
    rows.append(("u3", TS_2012 + 3.9999996, unusual))
    tables = []
    for name, make_writer in (("direct", open_writer), ("api", FeastApiWriter)):
        settings = Settings(run_dir=tmp_path / name)
        settings = settings.model_copy(update={"feast": settings.feast.model_copy(update={"online_store": "sqlite"})})
        store = build_store(settings)
        apply_definitions(store)
        writer = make_writer(store)
        assert isinstance(writer, SqliteWriter if name == "direct" else FeastApiWriter)
        writer.write(rows)
        writer.close()
        view = store.get_feature_view(FEATURE_VIEW_NAME)
        versioning = store.config.registry.enable_online_feature_view_versioning
        table = compute_table_id(store.config.project, view, versioning)
        with sqlite3.connect(store.config.online_store.path) as conn:
            tables.append(
                conn.execute(
                    f'SELECT entity_key, feature_name, value, value_text, event_ts FROM "{table}" '
                    "ORDER BY entity_key, feature_name"
                ).fetchall()
            )
    assert len(tables[0]) == len(rows) * len(FEATURE_FIELDS)
    assert tables[0] == tables[1]


def test_older_row_never_replaces_a_newer_one(store):
    """A retried or reordered batch must not move a user's features back in time."""
    writer = open_writer(store)
    newer = features_at("n", TS_2012 + 7200, 40.80, -73.90)
    older = features_at("o", TS_2012, 40.70, -74.00)
    writer.write([("erin", TS_2012 + 7200, newer)])
    writer.write([("erin", TS_2012, older)])
    (got,) = read_features(store, ["erin"])
    assert got["geohash6"] == newer["geohash6"]
    same_time = features_at("s", TS_2012 + 7200, 40.60, -73.80)
    writer.write([("erin", TS_2012 + 7200, same_time)])  # a replayed event at the same time is rewritten
    (got,) = read_features(store, ["erin"])
    assert got["geohash6"] == same_time["geohash6"]
    # Within one second too: the stream gives same-second events microsecond tie-breaks, and a retried batch can
    # arrive after the next one.
    later = features_at("l", TS_2012 + 9000.7, 40.50, -73.70)
    earlier = features_at("e", TS_2012 + 9000.2, 40.40, -73.60)
    writer.write([("erin", TS_2012 + 9000.7, later)])
    writer.write([("erin", TS_2012 + 9000.2, earlier)])
    (got,) = read_features(store, ["erin"])
    assert got["geohash6"] == later["geohash6"]
    writer.close()


def test_deleted_users_read_back_empty_and_others_stay(store):
    """What the stream does to the users it expires as idle; deleting unknown or repeated users is no error."""
    writer = open_writer(store)
    writer.write([(u, TS_2012, features_at(u, TS_2012, 40.7, -74.0)) for u in ("hal", "ida", "jo")])
    writer.delete(["hal", "jo", "hal", "nobody"])
    writer.delete([])
    hal, ida, jo = read_features(store, ["hal", "ida", "jo"])
    assert all(hal[name] is None and jo[name] is None for name, _ in FEATURE_FIELDS)
    assert ida["geohash6"] is not None
    writer.write([("hal", TS_2012 - 60, features_at("h2", TS_2012 - 60, 40.8, -73.9))])  # a returning user: any time
    (hal,) = read_features(store, ["hal"])
    assert hal["geohash6"] == features_at("h2", TS_2012 - 60, 40.8, -73.9)["geohash6"]
    writer.close()


def _sqlite_writer(tmp_path, monkeypatch, users_per_statement: int):
    """A SQLite store whose writer splits its upserts and deletes after `users_per_statement` users."""
    from features.writers import sqlite as sqlite_writer

    monkeypatch.setattr(sqlite_writer, "USERS_PER_STATEMENT", users_per_statement)
    monkeypatch.setattr(sqlite_writer, "USERS_PER_DELETE", users_per_statement)
    store = build_store(Settings(run_dir=tmp_path))
    apply_definitions(store)
    return store, open_writer(store)


def test_sqlite_orders_a_row_feasts_writer_stored_with_a_created_time_by_its_event_time(tmp_path, monkeypatch):
    """Feast's own writer stores created_ts in whole seconds where this writer stores microseconds: compared as they
    are, any row of this writer, an older one too, would replace Feast's."""
    from features.writers import feast_api

    class WithCreatedTime(FeastApiWriter):  # Feast's write path, with a created time as push() may give one
        def _write(self, rows):
            fromtimestamp = feast_api.datetime.fromtimestamp
            monkeypatch.setattr(
                self.store._get_provider(),
                "online_write_batch",
                lambda config, view, data, progress: online_write_batch(
                    config, view, [(k, v, ts, fromtimestamp(ts.timestamp(), UTC)) for k, v, ts, _ in data], progress
                ),
            )
            super()._write(rows)

    store, writer = _sqlite_writer(tmp_path, monkeypatch, 64)
    online_write_batch = store._get_provider().online_write_batch
    stored = features_at("f", TS_2012 + 3600, 40.70, -74.00)
    WithCreatedTime(store).write([("fay", TS_2012 + 3600, stored)])
    writer.write([("fay", TS_2012, features_at("o", TS_2012, 40.8, -73.9))])  # older: refused
    (got,) = read_features(store, ["fay"])
    assert got["geohash6"] == stored["geohash6"]
    newer = features_at("n", TS_2012 + 7200, 40.6, -73.8)
    writer.write([("fay", TS_2012 + 7200, newer)])
    (got,) = read_features(store, ["fay"])
    assert got["geohash6"] == newer["geohash6"]
    writer.close()


# Each zone's rules of 2007 on as a POSIX TZ string, which glibc reads without tzdata: where the zone's file is missing
# (it would read the name as UTC), the tests run on these rules instead of skipping; New York's spring of 2012 is the
# same under both.
ZONES = {
    "UTC": "UTC0",
    "America/New_York": "EST5EDT,M3.2.0,M11.1.0",
    "Europe/London": "GMT0BST,M3.5.0/1,M10.5.0",
    "Asia/Kolkata": "IST-5:30",
}


def tz(zone: str) -> str:
    """TZ for `zone`: its tzdata file (its whole history) where there is one, else its POSIX rule."""
    return zone if Path("/usr/share/zoneinfo", zone).is_file() else ZONES[zone]


def test_a_newer_row_wins_across_a_daylight_saving_change(store, monkeypatch):
    """Feast's SQLite times read UTC as local time: under New York's zone, 02:30 UTC on the day clocks spring forward
    reads as 07:30 UTC and 03:05 as 07:05, so ordering by them would keep the older row."""
    import time

    monkeypatch.setenv("TZ", tz("America/New_York"))
    time.tzset()
    try:
        writer = open_writer(store)
        spring = datetime(2012, 3, 11, 2, 30, tzinfo=UTC).timestamp()
        older = features_at("o", spring, 40.70, -74.00)
        newer = features_at("n", spring + 35 * 60, 40.80, -73.90)
        writer.write([("dana", spring, older)])
        writer.write([("dana", spring + 35 * 60, newer)])
        writer.write([("dana", spring - 3600, features_at("e", spring - 3600, 40.5, -73.7))])  # a late, older row
        (got,) = read_features(store, ["dana"])
        assert got["geohash6"] == newer["geohash6"]
        writer.close()
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.mark.parametrize("zone", list(ZONES))
def test_sqlite_event_times_as_feast_stores_them_in_any_zone(monkeypatch, zone):
    """The writer converts event times with a shortcut only where it agrees with Feast's own conversion."""
    import random
    import time

    from features.writers.sqlite import _feast_seconds_exact, feast_seconds_function

    monkeypatch.setenv("TZ", tz(zone))
    time.tzset()
    try:
        convert = feast_seconds_function()
        rng = random.Random(0)
        times = [0.0, 0.9999995, 0.9999996, 1.5, TS_2012, TS_2012 + 0.9999996, 4102444800.25]
        times += [rng.uniform(0, 4.2e9) for _ in range(20_000)]
        times += [rng.randrange(4 * 10**9) + 0.9999995 + rng.random() * 1e-6 for _ in range(2_000)]
        assert [convert(t) for t in times] == [_feast_seconds_exact(t) for t in times]
        assert (convert is _feast_seconds_exact) == (zone != "UTC")
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sqlite_event_times_outside_the_shortcut_take_the_exact_path(monkeypatch):
    """Negative times convert as Feast converts them; times past year 9999 and NaN fail as Feast's conversion does."""
    import math
    import time

    from features.writers.sqlite import _feast_seconds_exact, _feast_seconds_utc

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        for ts in (-0.5, -1.9999996, -86400.25):
            assert _feast_seconds_utc(ts) == _feast_seconds_exact(ts)
        for ts in (3e11, math.nan):
            with pytest.raises(ValueError):
                _feast_seconds_utc(ts)
    finally:
        monkeypatch.undo()
        time.tzset()


def test_sqlite_statements_fit_the_builds_parameter_limit():
    from features.writers.sqlite import USERS_PER_STATEMENT, users_per_statement

    assert users_per_statement(250_000, 36) == USERS_PER_STATEMENT
    assert users_per_statement(999, 36) == 27  # SQLite before 3.32
    with pytest.raises(RuntimeError, match="at most 35"):
        users_per_statement(35, 36)


def test_sqlite_delete_larger_than_one_statement(tmp_path, monkeypatch):
    store, writer = _sqlite_writer(tmp_path, monkeypatch, 3)
    users = [f"k{i}" for i in range(40)]
    writer.write([(u, TS_2012, features_at(u, TS_2012, 40.7, -74.0)) for u in users])
    writer.delete(users[:35])  # 35 keys at 3 a statement
    got = read_features(store, users)
    assert [g["user_id"] for g in got if g["geohash6"] is not None] == users[35:]
    writer.close()


def test_sqlite_batch_larger_than_one_statement_lands_whole(tmp_path, monkeypatch):
    """A batch is split into several multi-row statements (here 2 users each, the last one partial)."""
    store, writer = _sqlite_writer(tmp_path, monkeypatch, 2)
    users = [f"user{i}" for i in range(5)]
    rows = [(u, TS_2012 + i, features_at(f"e{i}", TS_2012 + i, 40.70 + i / 100, -74.00)) for i, u in enumerate(users)]
    assert writer.write(rows) == len(users)
    for got, (_, _, expected) in zip(read_features(store, users), rows, strict=True):
        assert {name: got[name] for name, _ in FEATURE_FIELDS} == expected
    writer.close()


@pytest.mark.integration
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_orders_rows_within_a_second(store):
    """Same-time events are written microseconds apart (streams.processor); Redis keeps the sub-second order."""
    writer = open_writer(store)
    newer = features_at("n", TS_2012, 40.80, -73.90)
    older = features_at("o", TS_2012, 40.70, -74.00)
    writer.write([("fay", TS_2012 + 2e-6, newer)])
    writer.write([("fay", TS_2012 + 1e-6, older)])
    (got,) = read_features(store, ["fay"])
    assert got["geohash6"] == newer["geohash6"]
    writer.write([("fay", TS_2012 + 3e-6, older)])
    (got,) = read_features(store, ["fay"])
    assert got["geohash6"] == older["geohash6"]
    writer.close()


@pytest.mark.integration
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_rows_expire_with_the_streams_idle_user_ttl(store):
    import redis

    writer = open_writer(store)
    writer.write([("gus", TS_2012, features_at("g", TS_2012, 40.7, -74.0))])
    key = writer.entity_key("gus") + store.config.project.encode()
    settings = get_settings()
    ttl = redis.Redis(host=settings.redis.host, port=settings.redis.port).ttl(key)
    assert settings.stream.idle_user_ttl_s - 60 <= ttl <= settings.stream.idle_user_ttl_s
    writer.close()


@pytest.mark.integration
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_batch_of_several_script_calls_lands_whole(store, monkeypatch):
    """A batch goes as several pipelined script calls (here 3 users each); each row's newer-time check still holds."""
    from features.writers import redis as redis_writer

    monkeypatch.setattr(redis_writer, "USERS_PER_CALL", 3)
    writer = open_writer(store)
    users = [f"v{i}" for i in range(10)]
    writer.write([("v4", TS_2012 + 600, features_at("new", TS_2012 + 600, 40.9, -73.8))])
    rows = [(u, TS_2012 + i, features_at(f"e{i}", TS_2012 + i, 40.70 + i / 100, -74.00)) for i, u in enumerate(users)]
    assert writer.write(rows) == len(users)
    for got, (user, _, expected) in zip(read_features(store, users), rows, strict=True):
        if user == "v4":  # its stored row is newer than the batch's
            expected = features_at("new", TS_2012 + 600, 40.9, -73.8)
        assert {name: got[name] for name, _ in FEATURE_FIELDS} == expected, user
    writer.close()


@pytest.mark.integration
@pytest.mark.parametrize("store", ["redis"], indirect=True)
def test_redis_writer_reloads_its_script_after_redis_lost_it(store):
    """Redis forgets scripts on restart (or SCRIPT FLUSH): every call of the batch answers NOSCRIPT, and the writer
    loads the script and writes the batch again (70 users: three pipelined calls)."""
    import redis

    writer = open_writer(store)
    writer.write([("kim", TS_2012, features_at("k1", TS_2012, 40.7, -74.0))])
    settings = get_settings()
    redis.Redis(host=settings.redis.host, port=settings.redis.port).script_flush()
    rows = [(f"kim{i}", TS_2012 + 60, features_at(f"k{i}", TS_2012 + 60, 40.8, -73.9)) for i in range(70)]
    assert writer.write(rows) == 70
    got = read_features(store, [u for u, _, _ in rows])
    assert all(g["geohash6"] == rows[0][2]["geohash6"] for g in got)
    writer.close()
