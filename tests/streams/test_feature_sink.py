"""The worker's online-store writer: writes and deletes run on one thread, in the order they were asked for."""

import asyncio

from features.compute import compute_features
from features.history import Visit
from features.store import build_store, read_features
from streams.feature_sink import FeastSink
from streams.settings import Settings

TS_2012 = 1333324800.0


def row(user: str, minutes: float) -> tuple[str, float, dict]:
    ts = TS_2012 + 60 * minutes
    return user, ts, compute_features([], Visit(f"{user}-{minutes}", ts, "poi", 40.7, -74.0))


def test_a_delete_asked_after_a_write_lands_after_it_and_a_later_write_brings_the_user_back(tmp_path):
    settings = Settings(run_dir=tmp_path)  # the embedded SQLite store
    sink = FeastSink(settings)
    sink.open()

    async def stream():
        # Asked in this order without waiting between them, as a worker's batch and expiry round can be.
        await asyncio.gather(sink.write([row("ann", 0), row("bob", 0)]), sink.delete(["ann"]))
        before_return = read_features(build_store(settings), ["ann", "bob"])
        await sink.write([row("ann", 5)])
        return before_return

    try:
        deleted = asyncio.run(stream())
        back = read_features(build_store(settings), ["ann"])
    finally:
        sink.close()
    ann, bob = deleted
    assert ann["count_1h"] is None and bob["count_1h"] == 1  # ann's write landed first, then her delete
    assert back[0]["count_1h"] == 1
