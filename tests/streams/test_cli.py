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


def test_an_invalid_environment_setting_is_one_line(capsys, monkeypatch, fresh_settings):
    monkeypatch.setenv("CLICKCAST_KAFKA__PORT", "abc")
    code, err = run(capsys, "tail", "predictions")
    assert code == 1 and err.count("\n") == 1 and "CLICKCAST_KAFKA__PORT='abc'" in err


def test_an_invalid_security_setting_names_the_problem_without_the_password(capsys, monkeypatch, fresh_settings):
    monkeypatch.setenv("CLICKCAST_KAFKA__SASL_PASSWORD", "hunter2")  # SASL settings on a PLAINTEXT protocol
    code, err = run(capsys, "tail", "predictions")
    assert code == 1 and err.count("\n") == 1 and "SASL security_protocol" in err and "hunter2" not in err


@pytest.mark.parametrize("value", ["nan", "inf", "-1", "x"])
def test_rates_must_be_finite_positive_numbers(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["produce", "--rate", value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--rate" in err


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
    from streams.commands import _shown
    from streams.render import render_prediction

    line = _shown(_Message(value), render_prediction, raw_json=False)
    assert line.startswith("predictions[2]@7: ") and shown in line
