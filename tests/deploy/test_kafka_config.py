"""Kafka's rendered config: one combined KRaft node on the configured loopback ports."""

from __future__ import annotations

from pathlib import Path

from deploy.stack.kafka import new_cluster_id, render_server_properties
from streams.settings import KafkaSettings, TopicSettings


def _parse(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_listeners_and_voters_follow_the_settings(tmp_path):
    kafka = KafkaSettings(host="127.0.0.1", port=29092, controller_port=29093)
    props = _parse(render_server_properties(kafka, TopicSettings(partitions=3), tmp_path / "data"))
    assert props["process.roles"] == "broker,controller"
    assert props["listeners"] == "PLAINTEXT://127.0.0.1:29092,CONTROLLER://127.0.0.1:29093"
    assert props["advertised.listeners"] == "PLAINTEXT://127.0.0.1:29092"
    assert props["controller.quorum.voters"] == f"{props['node.id']}@127.0.0.1:29093"
    assert props["num.partitions"] == "3"


def test_single_broker_internal_topics_need_one_replica(tmp_path):
    props = _parse(render_server_properties(KafkaSettings(), TopicSettings(), tmp_path))
    assert props["offsets.topic.replication.factor"] == "1"
    assert props["transaction.state.log.replication.factor"] == "1"
    assert props["transaction.state.log.min.isr"] == "1"


def test_log_dirs_is_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    props = _parse(render_server_properties(KafkaSettings(), TopicSettings(), Path("relative/data")))
    assert props["log.dirs"] == str(tmp_path / "relative" / "data")


def test_cluster_ids_are_22_url_safe_characters_not_starting_with_a_dash():
    ids = {new_cluster_id() for _ in range(500)}
    assert len(ids) == 500
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert not cluster_id.startswith("-")
        assert set(cluster_id) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
