"""The `clickcast` front: bad settings, bad numbers and an unreachable broker are one-line errors."""

import time

import pytest

from streams.cli import main
from streams.settings import get_settings


@pytest.fixture
def fresh_settings():
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("CLICKCAST_KAFKA__PORT", "abc"),
        ("CLICKCAST_KAFKA__PORT", "99999"),
        ("CLICKCAST_REDIS__PORT", "-5"),
        ("CLICKCAST_STREAM__STORE", "bogus://"),  # faust would fail only as the worker starts, with a traceback
    ],
)
def test_an_invalid_environment_setting_is_one_line(capsys, monkeypatch, fresh_settings, name, value):
    monkeypatch.setenv(name, value)
    code, err = run(capsys, "tail", "predictions")
    assert code == 1 and err.count("\n") == 1 and f"{name}='{value}'" in err, err


def test_a_setting_its_own_check_refuses_says_why_without_pydantics_prefix(capsys, monkeypatch, fresh_settings):
    monkeypatch.setenv("CLICKCAST_TOPICS__CLICKS", "a b")
    code, err = run(capsys, "tail", "predictions")
    assert code == 1 and err.startswith(
        "clickcast tail: invalid setting CLICKCAST_TOPICS__CLICKS='a b': 'a b' is not a"
    )


def test_an_invalid_security_setting_names_the_problem_without_the_password(capsys, monkeypatch, fresh_settings):
    monkeypatch.setenv("CLICKCAST_KAFKA__SASL_PASSWORD", "hunter2")  # SASL settings on a PLAINTEXT protocol
    code, err = run(capsys, "tail", "predictions")
    assert code == 1 and err.count("\n") == 1 and "SASL security_protocol" in err and "hunter2" not in err


@pytest.mark.parametrize(
    ("value", "reason"), [("nan", "finite"), ("inf", "finite"), ("-1", "positive"), ("x", "number")]
)
def test_rates_must_be_finite_positive_numbers(capsys, value, reason):
    with pytest.raises(SystemExit) as exit_:
        main(["produce", "--rate", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--rate" in err and reason in err


def test_an_unreachable_broker_is_one_line_not_endless_retries(capfd, monkeypatch, fresh_settings):
    monkeypatch.setenv("CLICKCAST_KAFKA__PORT", "9")  # the discard port: nothing listens
    started = time.monotonic()
    # capfd, not capsys: librdkafka would log its retries from C, straight to file descriptor 2.
    code, err = run(capfd, "tail", "predictions", "--limit", "1")
    assert code == 1 and err.count("\n") == 1 and "no Kafka broker answers at 127.0.0.1:9" in err
    assert time.monotonic() - started < 30


@pytest.mark.parametrize(
    "argv",
    [
        ["--workers", "1,,2"],
        ["--workers", "1,1"],
        ["--load-seconds=-5"],
        ["--prefill=-3"],
        ["--loads", "100,nan"],
        ["--events", "0"],
    ],
)
def test_benchmark_numbers_are_checked_before_anything_runs(capsys, argv):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "e2e", *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and argv[0].split("=")[0] in err


@pytest.mark.parametrize("bench", ["e2e", "components", "processor", "expiry"])
def test_a_benchmark_result_path_that_cannot_be_written_is_refused_before_the_run(capsys, tmp_path, bench):
    (tmp_path / "file").write_text("")
    for target, says in ((tmp_path, "is a folder"), (tmp_path / "file" / "out.json", "not a writable folder")):
        with pytest.raises(SystemExit) as exit_:
            main(["bench", bench, "--json", str(target)])
        err = capsys.readouterr().err
        assert exit_.value.code == 2 and err.count("\n") == 1 and says in err


def test_a_benchmark_column_mapping_that_does_not_read_is_one_line(capsys):
    code, err = run(capsys, "bench", "processor", "--columns", "user_id", "--events", "1")
    assert code == 1 and err.count("\n") == 1 and "column mapping 'user_id' is not field=column" in err


def test_a_benchmark_replays_a_file_with_other_column_names_through_its_mapping(capsys, monkeypatch, renamed_checkins):
    path, columns = renamed_checkins
    monkeypatch.setattr("streams.commands.tune_gc", lambda threshold: None)  # gc.freeze would outlive the test
    code = main(["bench", "processor", "--file", str(path), "--columns", columns, "--events", "50", "--batch", "16"])
    assert code == 0 and '"answered": 50' in capsys.readouterr().out


class _Message:
    def __init__(self, value):
        self._value = value

    def value(self):
        return self._value

    def topic(self):
        return "predictions"

    def partition(self):
        return 2

    def offset(self):
        return 7


@pytest.mark.parametrize(("value", "shown"), [(None, "empty message"), (b'{"not": "a prediction"}', "unreadable")])
def test_tail_names_a_message_it_cannot_render_instead_of_stopping(value, shown):
    from streams.render import message_line, render_prediction

    line = message_line(_Message(value), render_prediction, raw_json=False)
    assert line.startswith("predictions[2]@7: ") and shown in line


def test_a_failed_service_start_is_one_line_then_its_indented_details(capsys, monkeypatch):
    from deploy.stack import stack
    from deploy.stack.process import ServiceError

    def failing_up(settings):
        raise ServiceError("kafka exited during start-up\nlast lines of .run/logs/kafka.log:\nport in use")

    monkeypatch.setattr(stack, "up", failing_up)
    code, err = run(capsys, "stack", "up")
    assert code == 1
    assert err.splitlines() == [
        "clickcast stack: kafka exited during start-up",
        "  last lines of .run/logs/kafka.log:",
        "  port in use",
    ]


def test_more_demo_workers_than_the_topic_has_partitions_is_one_line(capsys, monkeypatch, fresh_settings):
    from types import SimpleNamespace

    monkeypatch.setenv("CLICKCAST_TOPICS__PARTITIONS", "2")  # the topic was made with more before: its count counts
    monkeypatch.setattr("deploy.stack.stack.status", lambda settings: [])
    clicks = SimpleNamespace(partitions=dict.fromkeys(range(4)))
    monkeypatch.setattr(
        "streams.kafka_config.ensure_reachable", lambda kafka: SimpleNamespace(topics={"clicks": clicks})
    )
    code, err = run(capsys, "demo", "--workers", "5")
    assert code == 1 and err.count("\n") == 1 and "the clicks topic has 4 partitions" in err


def test_a_failed_delivery_while_producing_is_one_line(capsys, monkeypatch, fresh_settings):
    from confluent_kafka import KafkaError, KafkaException

    def refused(*args, **kwargs):
        raise KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED, "not authorised"))

    monkeypatch.setattr("streams.commands._require_kafka", lambda settings: None)
    monkeypatch.setattr("streams.producer.replay", refused)
    code, err = run(capsys, "produce", "--limit", "5")
    assert code == 1 and err.strip().splitlines()[-1] == "clickcast produce: producing to clicks: not authorised"


def test_stopping_a_replay_by_hand_says_how_many_events_were_delivered(capsys, monkeypatch, fresh_settings):
    def interrupted(events, producer, *args, **kwargs):
        for _ in range(3):  # the broker took three before the stop, and refused a fourth
            producer._on_delivery(None, None)
        producer._on_delivery("refused", None)
        raise KeyboardInterrupt

    monkeypatch.setattr("streams.commands._require_kafka", lambda settings: None)
    monkeypatch.setattr("streams.producer.replay", interrupted)
    code, err = run(capsys, "produce", "--limit", "5")
    assert code == 130 and err.strip().splitlines()[-1] == "interrupted: 3 events delivered to clicks"


@pytest.mark.parametrize("topic", ["", "..", "a b", "x" * 250, "clicks/dlq"])
def test_a_topic_kafka_would_refuse_is_refused_by_its_argument(capsys, topic):
    with pytest.raises(SystemExit) as exit_:
        main(["produce", "--topic", topic])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "not a Kafka topic name" in err


def test_a_folder_given_as_the_events_file_is_named_as_a_folder(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("streams.commands._require_kafka", lambda settings: pytest.fail("asked the broker"))
    code, err = run(capsys, "produce", "--file", str(tmp_path))
    assert code == 1 and err == f"clickcast produce: {tmp_path} is a folder, not a data file\n"


def test_a_file_without_events_is_one_line_before_any_broker_is_asked(capsys, tmp_path, monkeypatch):
    monkeypatch.setattr("streams.commands._require_kafka", lambda settings: pytest.fail("asked the broker"))
    path = tmp_path / "header.csv"
    path.write_text("user_id,poi_id,latitude,longitude,utc_time_approx,category_name\n")
    code, err = run(capsys, "produce", "--file", str(path))
    assert code == 1 and err == f"clickcast produce: no events in {path}\n"


def test_a_memory_store_worker_neither_locks_nor_resets_the_table_directory(
    capsys, tmp_path, monkeypatch, fresh_settings
):
    from streams.app import claim_table_dir
    from streams.cli import CliError
    from streams.settings import Settings, StreamSettings

    def started(settings):
        raise CliError(f"would start on {settings.stream.store}")

    monkeypatch.setenv("CLICKCAST_STREAM__DATA_DIR", str(tmp_path / "tables"))
    monkeypatch.setattr("streams.kafka_config.ensure_reachable", lambda kafka: None)
    monkeypatch.setattr("streams.app.reset_stale_tables", lambda settings: pytest.fail("reset a memory store"))
    monkeypatch.setattr("streams.app.create_app", started)
    held = claim_table_dir(Settings(stream=StreamSettings(data_dir=tmp_path / "tables")))  # a RocksDB worker's
    try:
        code, err = run(capsys, "worker", "--store", "memory")
    finally:
        held.close()
    assert code == 1 and err == "clickcast worker: would start on memory://\n"
    assert (tmp_path / "tables" / "clickcast").is_dir()  # faust makes only the last level of its data directory
