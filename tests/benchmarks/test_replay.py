"""`clickcast bench processor`: the replay answers every measured click and reports its figures."""

from __future__ import annotations

import pytest

from streams.cli import main
from streams.commands import SAMPLE_DATA
from streams.settings import StreamSettings
from tests.benchmarks.replay import MODEL_HISTORY, replay
from tests.benchmarks.workload import Workload


def test_replay_measures_every_click_after_the_warm_up():
    lines: list[str] = []
    result = replay(Workload(SAMPLE_DATA), events=300, batch=32, settings=StreamSettings(), progress=lines.append)
    assert result["answered"] == result["events"] == 300
    assert result["cpu_us_per_event"] > 0 and result["wall_us_per_event"] > 0
    # Every click of a batch's user after the first reuses the batch's history: at most one load a click.
    assert 0 < result["state_loads_per_event"] <= 1
    # The measured half continues the warmed-up users, so their histories are not empty.
    assert 1 < result["model_history_events_mean"] <= MODEL_HISTORY
    assert any(line.startswith("warm-up") for line in lines) and any(line.startswith("measured") for line in lines)


def test_a_missing_events_file_is_one_line(capsys, tmp_path):
    code = main(["bench", "processor", "--events", "10", "--file", str(tmp_path / "none.csv")])
    err = capsys.readouterr().err
    assert code == 1 and err.count("\n") == 1 and "none.csv" in err


@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_the_event_count_must_be_positive(capsys, value):
    with pytest.raises(SystemExit) as exit_:
        main(["bench", "processor", "--events", value])
    assert exit_.value.code == 2 and capsys.readouterr().err.count("\n") == 1
