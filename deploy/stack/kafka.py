"""One Apache Kafka node in KRaft mode (combined broker and controller), run from Maven jars."""

from __future__ import annotations

import base64
import shutil
import subprocess
import uuid
from pathlib import Path

from deploy.stack.kafka_admin import admin_client
from deploy.stack.kafka_jars import ensure_jars
from deploy.stack.probes import port_open
from deploy.stack.service import Service
from streams.settings import KafkaSettings, Settings, TopicSettings

NODE_ID = 1
# What Kafka's own start scripts run the broker with (kafka-run-class.sh; kafka-server-start.sh fixes the heap:
# -Xms = -Xmx). A bare `java` gets G1's 200 ms pause goal and a heap that resizes: pauses of up to 43 ms and
# marking cycles of up to 140 ms, each young pause on both cores, stalled every click in flight.
JVM_PERFORMANCE_OPTS = (
    "-server",
    "-XX:+UseG1GC",
    "-XX:MaxGCPauseMillis=20",
    "-XX:InitiatingHeapOccupancyPercent=35",
    "-XX:+ExplicitGCInvokesConcurrent",
    "-XX:MaxInlineLevel=15",
    "-Djava.awt.headless=true",
)
# Small internal topics: one broker, and 50 offset partitions would slow the first consumer group join.
OFFSETS_PARTITIONS = 4


def render_server_properties(kafka: KafkaSettings, topics: TopicSettings, data_dir: Path) -> str:
    """server.properties for a single combined node listening on `kafka.host` only."""
    props = {
        "process.roles": "broker,controller",
        "node.id": NODE_ID,
        "controller.quorum.voters": f"{NODE_ID}@{kafka.host}:{kafka.controller_port}",
        "listeners": f"PLAINTEXT://{kafka.host}:{kafka.port},CONTROLLER://{kafka.host}:{kafka.controller_port}",
        "advertised.listeners": f"PLAINTEXT://{kafka.host}:{kafka.port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": str(data_dir.resolve()),
        "num.partitions": topics.partitions,
        "default.replication.factor": topics.replication_factor,
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": OFFSETS_PARTITIONS,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
    }
    return "".join(f"{key}={value}\n" for key, value in props.items())


def render_log4j_properties() -> str:
    """Kafka 3.9 logs through reload4j: INFO to stdout, which the process helper sends to kafka.log."""
    return (
        "log4j.rootLogger=INFO, stdout\n"
        "log4j.appender.stdout=org.apache.log4j.ConsoleAppender\n"
        "log4j.appender.stdout.layout=org.apache.log4j.PatternLayout\n"
        "log4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n"
        "log4j.logger.kafka.request.logger=WARN\n"
        "log4j.logger.org.apache.kafka.clients=WARN\n"
    )


def new_cluster_id() -> str:
    """A Kafka cluster id: a random UUID in URL-safe base64 that does not start with '-' (as Kafka's own)."""
    while True:
        cluster_id = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not cluster_id.startswith("-"):
            return cluster_id


class KafkaService(Service):
    name = "kafka"
    start_timeout_s = 90.0
    cause_pattern = r"\] (ERROR|FATAL) |Exception|Error:"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.run_dir)
        self.settings = settings
        self.kafka = settings.kafka
        self.data_dir = self.directory / "data"

    @property
    def port(self) -> int:
        return self.kafka.port

    def healthy(self) -> bool:
        if not port_open(self.kafka.host, self.kafka.port):
            return False
        from confluent_kafka import KafkaException

        try:
            return bool(admin_client(self.kafka.bootstrap).list_topics(timeout=2).brokers)
        except KafkaException:
            return False

    def prepare(self) -> None:
        self._java()
        ensure_jars(self.settings.cache_dir, self.kafka.version)

    @staticmethod
    def _java() -> str:
        java = shutil.which("java")
        if java is None:
            raise FileNotFoundError("java not found: run `make setup` (installs a JRE)")
        return java

    def _launch(self) -> None:
        java = self._java()
        lib = ensure_jars(self.settings.cache_dir, self.kafka.version)
        self.directory.mkdir(parents=True, exist_ok=True)
        server_props = self.directory / "server.properties"
        server_props.write_text(render_server_properties(self.kafka, self.settings.topics, self.data_dir))
        log4j = self.directory / "log4j.properties"
        log4j.write_text(render_log4j_properties())
        heap = [f"-Xms{self.kafka.heap}", f"-Xmx{self.kafka.heap}"]
        jvm = [java, *heap, *JVM_PERFORMANCE_OPTS, f"-Dlog4j.configuration=file:{log4j}", "-cp", f"{lib}/*"]
        if not (self.data_dir / "meta.properties").exists():
            self._format_storage(jvm, server_props)
        self.process.start([*jvm, "kafka.Kafka", str(server_props)], cwd=self.directory)

    def _format_storage(self, jvm: list[str], server_props: Path) -> None:
        id_file = self.directory / "cluster_id"
        if not id_file.exists():
            id_file.write_text(new_cluster_id() + "\n")
        cmd = [*jvm, "kafka.tools.StorageTool", "format", "--ignore-formatted"]
        cmd += ["-t", id_file.read_text().strip(), "-c", str(server_props)]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise RuntimeError(f"kafka storage format failed: {(result.stdout + result.stderr).strip()}")
