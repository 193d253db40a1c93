import shutil

import pytest

from streams.app import claim_table_dir, table_dir
from streams.settings import Settings, StreamSettings


def settings_at(path) -> Settings:
    return Settings(stream=StreamSettings(data_dir=path))


def test_a_second_worker_on_the_same_table_store_is_refused_until_the_first_exits(tmp_path):
    first = claim_table_dir(settings_at(tmp_path / "a"))
    with pytest.raises(OSError, match="CLICKCAST_STREAM__DATA_DIR"):
        claim_table_dir(settings_at(tmp_path / "a"))
    other = claim_table_dir(settings_at(tmp_path / "b"))  # its own directory: no conflict
    first.close()
    claim_table_dir(settings_at(tmp_path / "a")).close()
    other.close()


def test_the_lock_outlives_rebuilding_the_store(tmp_path):
    settings = settings_at(tmp_path)
    lock = claim_table_dir(settings)
    table_dir(settings).mkdir(parents=True)
    shutil.rmtree(table_dir(settings))  # as reset_stale_tables does with a store of another cluster
    with pytest.raises(OSError):
        claim_table_dir(settings)
    lock.close()


def test_workers_with_memory_stores_share_a_data_dir(tmp_path):
    memory = Settings(stream=StreamSettings(data_dir=tmp_path, store="memory://"))
    held = claim_table_dir(settings_at(tmp_path))  # a RocksDB worker's lock does not concern them either
    assert claim_table_dir(memory) is None
    assert claim_table_dir(memory) is None
    held.close()


@pytest.fixture
def cluster(monkeypatch):
    """The id the broker answers with (`ensure_reachable`), set by the test."""
    from types import SimpleNamespace

    import streams.kafka_config as kafka_config

    answer = SimpleNamespace(cluster_id="cluster-a")
    monkeypatch.setattr(kafka_config, "ensure_reachable", lambda _kafka: answer)
    return answer


def test_a_table_store_of_another_kafka_cluster_is_dropped_and_one_of_this_cluster_kept(tmp_path, cluster):
    """The stores are a cache of the changelog topics, which a wiped broker no longer holds: faust refuses them."""
    from streams.app import reset_stale_tables

    settings = settings_at(tmp_path)
    store = table_dir(settings)
    assert reset_stale_tables(settings) is False  # a first start: nothing to drop
    (store / "partition-0.db").write_text("rows")
    assert reset_stale_tables(settings) is False and (store / "partition-0.db").exists()  # the same cluster
    cluster.cluster_id = "cluster-b"  # the stack's data was wiped: a new cluster
    assert reset_stale_tables(settings) is True
    assert not (store / "partition-0.db").exists() and (store / "kafka-cluster-id").read_text() == "cluster-b"


def test_a_table_store_without_a_cluster_record_is_dropped(tmp_path, cluster):
    from streams.app import reset_stale_tables

    settings = settings_at(tmp_path)
    table_dir(settings).mkdir(parents=True)
    (table_dir(settings) / "partition-0.db").write_text("rows of an unknown cluster")
    assert reset_stale_tables(settings) is True and not (table_dir(settings) / "partition-0.db").exists()
