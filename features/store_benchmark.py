"""Measure the online write path: the store's direct writer (features.writers) and Feast's online_write_batch
against `store.push(..., PushMode.ONLINE)`, and reads.

Run: `python -m features.store_benchmark [--online-store sqlite|redis] [--rows N]`; it writes into
a throwaway run dir (sqlite) or into the configured Redis under a `clickcast_bench` project.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from features.compute import FEATURE_FIELDS, compute_features
from features.history import Visit

BATCH_SIZES = (1, 64, 500)
READ_SAMPLES = 1000  # a p99 over 200 reads would be their second-largest
BASE_TS = 1333324800.0  # 2012-04-02: a historical replay, like the real data


def sample_rows(n: int, n_users: int = 1000, prefix: str = "user") -> list[tuple[str, float, dict]]:
    rows = []
    for i in range(n):
        ts = BASE_TS + 60.0 * i
        at = Visit(f"e{i}", ts, f"poi{i % 97}", 40.70 + (i % 13) * 0.01, -74.00 + (i % 7) * 0.01)
        rows.append((f"{prefix}{i % n_users}", ts, compute_features([], at)))
    return rows


def _users(run_id: str, path: str, size: int) -> str:
    """The user id prefix of one write path at one batch size in one run: rows left in Redis by an earlier,
    interrupted run would be no newer than this run's, and skipped writes would pass for fast ones."""
    return f"{run_id}-{path}-{size}-user"


def _rates(paths: dict, batches: dict[str, list], rounds: int = 10) -> dict[str, float]:
    """Rows/s of each write path. The paths take turns, each writing the next tenth of its batches in
    every round, so a machine whose speed drifts during the run (a shared VM) slows every path alike."""
    elapsed = dict.fromkeys(paths, 0.0)
    for r in range(rounds):
        for name, write in paths.items():
            mine = batches[name]
            start = time.perf_counter()
            for batch in mine[r * len(mine) // rounds : (r + 1) * len(mine) // rounds]:
                write(batch)
            elapsed[name] += time.perf_counter() - start
    return {name: sum(len(b) for b in batches[name]) / elapsed[name] for name in paths}


def run(online_store: str, n_rows: int) -> dict[str, dict]:
    """Prints and returns {"write": {batch: rows/s of each path}, "read": {users: p50/p99 ms}}."""
    if n_rows < max(BATCH_SIZES):
        raise ValueError(f"need at least {max(BATCH_SIZES)} rows (one batch of the largest size), got {n_rows}")
    run_id = uuid.uuid4().hex[:8]
    import pandas as pd
    from feast.data_source import PushMode

    from features.repo import PUSH_SOURCE_NAME, TIMESTAMP_FIELD
    from features.store import apply_definitions, build_store, read_features
    from features.writers import FeastApiWriter, open_writer
    from streams.settings import get_settings

    settings = get_settings()
    with tempfile.TemporaryDirectory() as tmp:
        settings = settings.model_copy(
            update={
                "run_dir": Path(tmp),
                "feast": settings.feast.model_copy(update={"online_store": online_store, "project": "clickcast_bench"}),
            }
        )
        store = build_store(settings)
        apply_definitions(store)
        writer = open_writer(store)
        feast_api = FeastApiWriter(store)

        # Each path and batch size writes users of its own: rows no newer than the stored ones are skipped
        # (by Feast on Redis, by the project's writers everywhere), so shared users would measure skipped writes.
        def rows_of(size: int) -> dict[str, list]:
            return {path: sample_rows(n_rows, prefix=_users(run_id, path, size)) for path in ("writer", "api", "push")}

        figures: dict[str, dict] = {"write": {}, "read": {}}

        def push(batch):
            df = pd.DataFrame(
                [{"user_id": u, TIMESTAMP_FIELD: datetime.fromtimestamp(ts, UTC), **f} for u, ts, f in batch]
            )
            store.push(PUSH_SOURCE_NAME, df, to=PushMode.ONLINE)

        print(f"online store: {online_store}, {n_rows} rows, {len(FEATURE_FIELDS)} features")
        for size in BATCH_SIZES:
            rows = rows_of(size)
            # Fewer single-row calls: they are slow on the push path and the rate settles quickly.
            usable = max(size, min(n_rows, 200 * size))
            batches = {path: [r[i : i + size] for i in range(0, usable, size)] for path, r in rows.items()}
            paths = {"writer": writer.write, "api": feast_api.write, "push": push}
            for path, write in paths.items():  # unmeasured: first-call costs (connections, pandas, arrow)
                write(sample_rows(size, prefix=_users(run_id, f"{path}-warm", size)))
            rates = _rates(paths, batches)
            w, a, p = rates["writer"], rates["api"], rates["push"]
            print(
                f"batch {size:4d}: writer {w:9.0f} rows/s   online_write_batch {a:9.0f} rows/s   "
                f"push {p:9.0f} rows/s   x{w / p:.1f}"
            )
            figures["write"][str(size)] = {
                "writer_rows_per_s": round(w, 1),
                "online_write_batch_rows_per_s": round(a, 1),
                "push_rows_per_s": round(p, 1),
                "speedup": round(w / p, 2),
            }

        for n_entities in (1, 64):
            users = [f"{_users(run_id, 'writer', BATCH_SIZES[-1])}{i}" for i in range(n_entities)]
            read_features(store, users)  # warm the registry cache
            timings = []
            for _ in range(READ_SAMPLES):
                start = time.perf_counter()
                read_features(store, users)
                timings.append((time.perf_counter() - start) * 1e3)
            q = statistics.quantiles(timings, n=100)
            print(f"read {n_entities:3d} users: p50 {q[49]:.2f} ms  p99 {q[98]:.2f} ms")
            figures["read"][str(n_entities)] = {"p50_ms": round(q[49], 3), "p99_ms": round(q[98], 3)}
        writer.close()
        if online_store == "redis":
            store.teardown()
        return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--online-store", choices=("sqlite", "redis"), default="sqlite")
    parser.add_argument("--rows", type=int, default=5000)
    args = parser.parse_args()
    run(args.online_store, args.rows)


if __name__ == "__main__":
    main()
