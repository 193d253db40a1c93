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
