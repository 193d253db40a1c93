import io
import json

from trainer.metrics import METRICS
from trainer.progress import ProgressLog
from trainer.report import gain_cell, markdown_table, plot_curves, plot_gains, plot_metrics, text_table, write_metrics

PNG = b"\x89PNG"


def sample_metrics():
    values = {m: 0.1 * (i + 1) for i, m in enumerate(METRICS)}
    return {
        "data": {"events": 10},
        "model": values,
        "baselines": {"user_frequency": {m: v / 2 for m, v in values.items()}},
        "ablations": {"no_text": values},
        "robustness": {},
    }


def test_tables_list_model_baselines_and_ablations(tmp_path):
    metrics = sample_metrics()
    table = markdown_table(metrics)
    assert table.splitlines()[0] == "| | acc@1 | acc@5 | acc@10 | ndcg@10 | mrr |"
    assert "| user_frequency (baseline) | 0.0500 |" in table
    assert len(table.splitlines()) == 2 + 3
    assert "no_text (ablation)" in text_table(metrics)
    path = write_metrics(tmp_path, metrics)
    assert json.loads(path.read_text())["baselines"]["user_frequency"]["acc@1"] == 0.05


def with_gains(metrics):
    gain = {"gain": 0.109, "low": 0.086, "high": 0.132}
    no_ratio = {"gain": None, "low": None, "high": None}
    # Rounding can leave a bound a hair inside the gain when every draw gives the same ratio.
    same = {"gain": 0.05, "low": 0.05, "high": 0.05 - 4e-16}
    over = {
        "user_frequency": dict.fromkeys(METRICS, gain),
        "no_text": {**dict.fromkeys(METRICS, same), "mrr": no_ratio},
    }
    return {**metrics, "gains": {"unit": "user", "resamples": 1000, "level": 0.95, "over": over}}


def test_gains_follow_the_table_with_their_intervals():
    metrics = with_gains(sample_metrics())
    assert gain_cell({"gain": 0.109, "low": -0.004, "high": 0.132}) == "+10.9% (-0.4..+13.2)"
    table = markdown_table(metrics)
    assert "relative gain of clickcast (95% interval over 1000 resamples of users):" in table
    assert "| over user_frequency | +10.9% (+8.6..+13.2) |" in table
    assert table.splitlines()[-1].endswith("| n/a |")  # no ratio over a scorer that hit nothing
    text = text_table(metrics)
    assert "over no_text" in text and text.count("+10.9% (+8.6..+13.2)") == 5
    assert "relative gain" not in text_table(sample_metrics())  # reports written before gains


def test_plots_are_png_files(tmp_path):
    histories = {"a": {"train_loss": [3.0, 2.0], "val_mrr": [0.1, 0.2]}, "b": {"train_loss": [4.0]}}
    curves = plot_curves(histories, tmp_path / "c.png")
    bars = plot_metrics(sample_metrics(), tmp_path / "m.png")
    gains = plot_gains(with_gains(sample_metrics()), tmp_path / "g.png")
    assert curves.read_bytes()[:4] == PNG and bars.read_bytes()[:4] == PNG and gains.read_bytes()[:4] == PNG


def test_progress_prints_message_changes_and_throttles_repeats():
    out = io.StringIO()
    log = ProgressLog(stream=out, interval_s=3600)
    report = log.step("fit")
    report("epoch 1/3", 1 / 3)  # first report of a short step: silent
    report("epoch 2/3", 2 / 3)
    report("epoch 2/3", 0.7)  # same message within the interval: silent
    report("epoch 3/3", 1.0)
    lines = out.getvalue().splitlines()
    assert len(lines) == 2
    assert "fit: epoch 2/3 67% ETA" in lines[0] and lines[1].endswith("fit: epoch 3/3 100%")
