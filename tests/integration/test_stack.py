"""Each service of the running stack does its job for the clients the project uses."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections.abc import Callable

import numpy as np
import pytest

from streams.settings import PROJECT_ROOT

pytestmark = pytest.mark.integration

SEQUENCE_LENGTH = 6


def _create_topics(bootstrap: str, names: list[str]) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})
    for future in admin.create_topics([NewTopic(n, 1, 1) for n in names]).values():
        future.result(timeout=30)


def _consume(
    bootstrap: str, topic: str, count: int, timeout_s: float, give_up: Callable[[], bool] = lambda: False
) -> list[bytes]:
    from confluent_kafka import Consumer

    consumer = Consumer(
        {"bootstrap.servers": bootstrap, "group.id": f"test-{uuid.uuid4().hex}", "auto.offset.reset": "earliest"}
    )
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while len(values) < count and time.monotonic() < deadline and not give_up():
            message = consumer.poll(0.5)
            if message is not None and message.error() is None:
                values.append(message.value())
    finally:
        consumer.close()
    return values


def _clickcast(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "streams.cli", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=300
    )


def test_up_leaves_a_healthy_stack_alone(stack):
    from deploy.stack.stack import status

    before = {s.name: s.pid for s in status(stack)}
    result = _clickcast("stack", "up")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("already running") == len(before), result.stdout
    assert {s.name: s.pid for s in status(stack)} == before


def test_status_json_lists_every_service_healthy(stack):
    import json

    result = _clickcast("stack", "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    services = json.loads(result.stdout)
    assert {s["name"] for s in services} == {"kafka", "redis", "triton"}
    assert all(s["state"] == "healthy" and s["pid"] > 0 for s in services)


def test_stream_topics_exist_with_configured_partitions(stack):
    from confluent_kafka.admin import AdminClient

    metadata = AdminClient({"bootstrap.servers": stack.kafka.bootstrap}).list_topics(timeout=10)
    for name in (stack.topics.clicks, stack.topics.predictions, stack.topics.dead_letters):
        assert name in metadata.topics, name
        assert len(metadata.topics[name].partitions) >= stack.topics.partitions


def test_confluent_kafka_round_trip(stack):
    from confluent_kafka import Producer

    topic = f"stack-test-{uuid.uuid4().hex[:8]}"
    _create_topics(stack.kafka.bootstrap, [topic])
    sent = [f"message-{i}".encode() for i in range(5)]
    producer = Producer({"bootstrap.servers": stack.kafka.bootstrap})
    for value in sent:
        producer.produce(topic, value)
    assert producer.flush(10) == 0
    assert _consume(stack.kafka.bootstrap, topic, len(sent), timeout_s=30) == sent


def test_faust_agent_consumes_and_produces(stack, tmp_path):
    tag = uuid.uuid4().hex[:8]
    _create_topics(stack.kafka.bootstrap, [f"relay-in-{tag}", f"relay-out-{tag}"])
    env = {**os.environ, "RELAY_TAG": tag, "RELAY_BROKER": stack.kafka.bootstrap, "RELAY_DATA": str(tmp_path)}
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.faust_relay", "worker", "--without-web", "-l", "warn"],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": stack.kafka.bootstrap})
        for i in range(3):
            producer.produce(f"relay-in-{tag}", f"click-{i}".encode())
        producer.flush(10)
        relayed = _consume(
            stack.kafka.bootstrap, f"relay-out-{tag}", 3, timeout_s=60, give_up=lambda: worker.poll() is not None
        )
    finally:
        worker.terminate()
        output, _ = worker.communicate(timeout=30)
    assert relayed == [b"CLICK-0", b"CLICK-1", b"CLICK-2"], output.decode(errors="replace")[-2000:]


def test_redis_answers(stack):
    import redis

    client = redis.Redis(host=stack.redis.host, port=stack.redis.port)
    assert client.ping()
    key = f"stack-test:{uuid.uuid4().hex}"
    client.set(key, b"value", ex=60)
    assert client.get(key) == b"value"
    client.delete(key)


def _sequence(name: str, length: int) -> np.ndarray:
    """A plausible history of `length` check-ins: a few venues in Manhattan, ten minutes apart."""
    steps = np.arange(length)
    if name == "ITEM_IDS":  # one string: the history's ids joined by spaces
        return np.array([" ".join(f"venue-{i % 4}" for i in steps).encode()], dtype=np.object_)
    if name == "TIMESTAMPS":
        return 1.335e9 + 600.0 * steps.astype(np.float64)
    if name == "LATITUDES":
        return np.full(length, 40.73, dtype=np.float32)
    return np.full(length, -73.99, dtype=np.float32)  # LONGITUDES


def _inputs(module, config: dict) -> list:
    """One request shaped by the model's own config: -1 dims become SEQUENCE_LENGTH, plus a batch dim."""
    batched = int(config.get("max_batch_size", 0)) > 0
    inputs = []
    stamps = next(s for s in config["input"] if s["name"] == "TIMESTAMPS")
    length = int(np.prod([SEQUENCE_LENGTH if int(d) == -1 else int(d) for d in stamps["dims"]]))
    for spec in config["input"]:
        shape = [SEQUENCE_LENGTH if int(d) == -1 else int(d) for d in spec["dims"]]
        data = _sequence(spec["name"], length).reshape(shape)
        if batched:
            data = data[np.newaxis, ...]
        datatype = spec["data_type"].removeprefix("TYPE_").replace("STRING", "BYTES")
        tensor = module.InferInput(spec["name"], list(data.shape), datatype)
        tensor.set_data_from_numpy(data)
        inputs.append(tensor)
    return inputs


def test_triton_serves_the_model_over_http_and_grpc(stack):
    import tritonclient.grpc as grpcclient
    import tritonclient.http as httpclient

    name = stack.triton.model_name
    http = httpclient.InferenceServerClient(stack.triton.http_url)
    grpc = grpcclient.InferenceServerClient(stack.triton.grpc_url)
    assert http.is_server_ready() and grpc.is_server_ready()
    assert http.is_model_ready(name)
    config = http.get_model_config(name)

    answers = []
    for module, client in ((httpclient, http), (grpcclient, grpc)):
        result = client.infer(name, _inputs(module, config))
        answers.append((result.as_numpy("TOP_ITEMS"), result.as_numpy("TOP_SCORES")))

    (http_items, http_scores), (grpc_items, grpc_scores) = answers
    assert http_items.size > 0 and http_items.shape == http_scores.shape
    assert np.isfinite(http_scores).all()
    assert np.all(np.diff(http_scores.reshape(-1)) <= 1e-6), "TOP_SCORES must be sorted best first"
    np.testing.assert_array_equal(http_items, grpc_items)
    np.testing.assert_allclose(http_scores, grpc_scores, rtol=1e-5)


def test_triton_names_the_version_it_serves_and_nothing_where_none_answers(stack):
    """What `clickcast export` keeps from pruning: the one version Triton serves (the newest that loaded)."""
    from deploy.stack.triton import model_versions, ready_versions
    from streams.settings import get_settings

    name, repository = stack.triton.model_name, get_settings().model_repository
    served = ready_versions(stack.triton.http_url, name)
    assert len(served) == 1 and served <= set(model_versions(repository, name)), served
    assert ready_versions("127.0.0.1:9", name) == set()  # the discard port: nothing answers
