"""Client configuration derived from settings, for confluent-kafka and for faust (aiokafka).

One place for bootstrap servers and security, so SASL/TLS is a settings change, not a code change.
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any

from streams.settings import KafkaSettings

if TYPE_CHECKING:
    from confluent_kafka.admin import ClusterMetadata


def confluent_config(kafka: KafkaSettings, **extra: Any) -> dict[str, Any]:
    config: dict[str, Any] = {
        "bootstrap.servers": kafka.bootstrap,
        "security.protocol": kafka.security_protocol,
    }
    if kafka.sasl_mechanism:
        config |= {
            "sasl.mechanism": kafka.sasl_mechanism,
            "sasl.username": kafka.sasl_username,
            "sasl.password": kafka.sasl_password,
        }
    if kafka.ssl_cafile:
        config["ssl.ca.location"] = kafka.ssl_cafile
    return config | extra


def worker_client_id(pid: int) -> str:
    """The Kafka client id of the worker process `pid` on this host: who starts workers can tell them among the
    group's members (a worker killed without leaving stays a member until its session times out). The host name
    tells apart workers whose pids agree, as every container's first process does."""
    return f"clickcast-worker-{socket.gethostname()}-{pid}"


def faust_broker_options(kafka: KafkaSettings) -> dict[str, Any]:
    """Keyword arguments for `faust.App` that carry the broker address and security."""
    options: dict[str, Any] = {"broker": f"kafka://{kafka.bootstrap}"}
    if kafka.security_protocol == "PLAINTEXT":
        return options
    import ssl

    import faust

    context = ssl.create_default_context(cafile=kafka.ssl_cafile) if "SSL" in kafka.security_protocol else None
    if kafka.sasl_mechanism:
        options["broker_credentials"] = faust.SASLCredentials(
            username=kafka.sasl_username,
            password=kafka.sasl_password,
            mechanism=kafka.sasl_mechanism,
            ssl_context=context,
        )
    elif context is not None:
        options["broker_credentials"] = faust.SSLCredentials(context)
    return options


def ensure_reachable(kafka: KafkaSettings, timeout_s: float = 10.0) -> ClusterMetadata:
    """The cluster's metadata; ConnectionError (one line) when no broker answers within `timeout_s`: commands
    check this first instead of leaving librdkafka to retry and log every 100 ms for as long as they run."""
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    # log_level 0: the failed connection attempts are summed up in the one error below, not logged each.
    admin = AdminClient(confluent_config(kafka, log_level=0))
    try:
        return admin.list_topics(timeout=timeout_s)
    except KafkaException as exc:
        raise ConnectionError(
            f"no Kafka broker answers at {kafka.bootstrap} ({exc.args[0].str()}): is it running? "
            "(`clickcast stack up` starts the local stack)"
        ) from None
