import pytest
from pydantic import ValidationError

from streams.settings import Settings, StreamSettings, TopicSettings, TritonSettings


def test_topics_must_differ():
    with pytest.raises(ValidationError, match="must differ"):
        TopicSettings(dead_letters="clicks")
    assert TopicSettings(dead_letters="clicks.errors").dead_letters == "clicks.errors"


@pytest.mark.parametrize("name", ["", ".", "..", "a b", "clicks/dlq", "x" * 250])
def test_a_topic_name_kafka_would_refuse_is_refused_by_the_settings(name):
    with pytest.raises(ValidationError, match="not a Kafka topic name"):
        TopicSettings(clicks=name)


def test_topic_names_kafka_takes_are_taken():
    assert TopicSettings(clicks="clicks.v2_a-b").clicks == "clicks.v2_a-b"
    assert TopicSettings(clicks="x" * 249).clicks == "x" * 249  # Kafka's longest


@pytest.mark.parametrize("name", ["", ".", "..", "../escape", "a/b", "-x", ".x", "x" * 129])
def test_a_model_name_that_could_name_a_path_is_refused_by_the_settings(name):
    with pytest.raises(ValidationError, match="not a model name"):
        TritonSettings(model_name=name)


def test_model_names_that_name_no_path_are_taken():
    assert TritonSettings(model_name="next_place.v2").model_name == "next_place.v2"
    assert TritonSettings(model_name="_" + "x" * 127).model_name == "_" + "x" * 127  # 128, the longest


def test_history_retention_must_cover_the_longest_window_plus_the_allowed_lateness():
    with pytest.raises(ValidationError, match="history_retention_s"):
        StreamSettings(history_retention_s=1800, allowed_lateness_s=3600)
    with pytest.raises(ValidationError, match=r"longest feature window \(86400 s\)"):
        StreamSettings(history_retention_s=86400, allowed_lateness_s=3600)
    assert StreamSettings(history_retention_s=90000, allowed_lateness_s=3600).history_retention_s == 90000


def test_folders_are_made_absolute(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("CLICKCAST_RUN_DIR", "state/run")
    assert Settings().run_dir == tmp_path.resolve() / "state" / "run"


@pytest.mark.parametrize("grace", [0.0, float("inf"), float("nan")])
def test_the_failed_stop_grace_is_a_finite_positive_time(grace):
    with pytest.raises(ValidationError, match="failed_stop_grace_s"):
        StreamSettings(failed_stop_grace_s=grace)


def test_updated_replaces_only_the_named_fields_and_leaves_the_original():
    base = Settings()
    other = "redis" if base.feast.online_store == "sqlite" else "sqlite"
    changed = base.updated(feast={"online_store": other}, triton={}, stream={"explain": not base.stream.explain})
    assert (changed.feast.online_store, changed.stream.explain) == (other, not base.stream.explain)
    assert changed.feast.project == base.feast.project and changed.triton == base.triton
    assert base.feast.online_store != other  # the original is left as it was
