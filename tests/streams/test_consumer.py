import itertools

import pytest
from confluent_kafka import KafkaError, KafkaException

from streams.consumer import TopicReader


class Message:
    def __init__(self, value: bytes | None = None, error: KafkaError | None = None) -> None:
        self._value, self._error = value, error

    def value(self) -> bytes | None:
        return self._value

    def error(self) -> KafkaError | None:
        return self._error


class Polls:
    """A consumer whose polls return the given messages, then nothing."""

    def __init__(self, messages: list[Message]) -> None:
        self._messages = list(messages)

    def poll(self, timeout: float) -> Message | None:
        return self._messages.pop(0) if self._messages else None


def reader_of(messages: list[Message]) -> TopicReader:
    reader = TopicReader.__new__(TopicReader)  # no broker: only messages() is under test
    reader.topic = "predictions"
    reader._consumer = Polls(messages)
    return reader


def test_messages_read_past_transient_errors_and_partition_ends():
    reader = reader_of(
        [
            Message(b"a"),
            Message(error=KafkaError(KafkaError._TRANSPORT, "connection lost")),
            Message(error=KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down")),
            Message(error=KafkaError(KafkaError._MAX_POLL_EXCEEDED, "not polled for a while")),
            Message(error=KafkaError(KafkaError._PARTITION_EOF)),
            Message(b"b"),
        ]
    )
    assert [m.value() for m in itertools.islice(reader.messages(idle_timeout=None), 2)] == [b"a", b"b"]


@pytest.mark.parametrize(
    "error",
    [
        KafkaError(KafkaError._FATAL, "fenced", fatal=True),
        KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorised"),
    ],
)
def test_messages_raise_on_an_error_that_waiting_would_not_mend(error):
    reader = reader_of([Message(b"a"), Message(error=error)])
    with pytest.raises(KafkaException):
        list(reader.messages(idle_timeout=0.0))


def test_errors_alone_still_end_an_idle_read():
    down = [Message(error=KafkaError(KafkaError._ALL_BROKERS_DOWN, "all brokers down")) for _ in range(3)]
    assert list(reader_of(down).messages(idle_timeout=0.0)) == []
