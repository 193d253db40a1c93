"""Kafka security settings: complete or refused, and read alike by confluent-kafka and faust (aiokafka)."""

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from streams.kafka_config import confluent_config, faust_broker_options
from streams.settings import KafkaSettings

SASL = {"sasl_mechanism": "SCRAM-SHA-512", "sasl_username": "clickcast", "sasl_password": "secret"}


@pytest.mark.parametrize(
    "settings",
    [
        {},
        {"security_protocol": "SSL"},
        {"security_protocol": "SASL_PLAINTEXT", **SASL},
        {"security_protocol": "SASL_SSL", **SASL},
    ],
    ids=["plaintext", "ssl", "sasl-plaintext", "sasl-ssl"],
)
def test_both_clients_use_the_same_protocol_and_mechanism(settings):
    kafka = KafkaSettings(**settings)
    confluent = confluent_config(kafka)
    faust = credentials_to_aiokafka_auth(faust_broker_options(kafka).get("broker_credentials"))
    assert confluent["security.protocol"] == faust.get("security_protocol", "PLAINTEXT")
    assert confluent.get("sasl.mechanism") == faust.get("sasl_mechanism")
    assert confluent.get("sasl.username") == faust.get("sasl_plain_username")


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"security_protocol": "SASL_SSL", "sasl_username": "u", "sasl_password": "p"}, "needs sasl_mechanism"),
        ({"security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": "PLAIN"}, "needs sasl_username, sasl_password"),
        ({"security_protocol": "SSL", **SASL}, "need a SASL security_protocol"),
        ({"security_protocol": "PLAINTEXT", "sasl_mechanism": "PLAIN"}, "need a SASL security_protocol"),
        ({"security_protocol": "PLAINTEXT", "ssl_cafile": "/ca.pem"}, "ssl_cafile needs SSL"),
        ({"security_protocol": "SSL", "ssl_cafile": "/nonexistent/ca.pem"}, "is not a file"),
        ({"security_protocol": "SASL_SSL", **SASL, "sasl_mechanism": "GSSAPI"}, "sasl_mechanism"),
    ],
)
def test_settings_a_client_would_drop_are_refused(settings, message):
    with pytest.raises(ValidationError, match=message):
        KafkaSettings(**settings)
