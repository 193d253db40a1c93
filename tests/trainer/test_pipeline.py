import json

import pytest

from streams.cli import main
from tests.trainer.synthetic import habitual_frame, write_csv
from trainer.metrics import METRICS
from trainer.pipeline import ablation_configs, run_training, strongest_baseline, variant

BASELINES = {"most_popular", "user_frequency", "markov", "markov_frequency", "nearest_distance", "spatio_temporal"}


def tiny_config():
    from trainer.model import ClickcastConfig

    return ClickcastConfig.quick().replace(
        max_len=12, stride=6, hidden=16, layers=1, heads=1, pretrain_epochs=1, finetune_epochs=1, use_text=False,
        threads=1, val_events=100, batch_size=32,
    )  # fmt: skip


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("train")
    csv = root / "checkins.csv"
    write_csv(csv, habitual_frame(n_users=12, days=25))
    metrics = run_training(csv, root / "out", quick=False, config=tiny_config())
    return csv, root / "out", metrics


def test_writes_metrics_json_in_the_issue_shape_with_plots_and_model(trained):
    _, out, metrics = trained
    saved = json.loads((out / "metrics.json").read_text())
    assert {"data", "model", "baselines", "ablations", "robustness"} <= set(saved)
    assert set(saved["model"]) == set(METRICS)
    assert set(saved["baselines"]) == BASELINES | {"sasrec"}
    assert set(saved["ablations"]) == {"no_pretraining", "with_adversarial", "no_visit_prior"}  # tiny: no text, no FGSM
    # Robustness compares, on the same noisy test histories, the model without FGSM (here the shipped one) and with it.
    robustness = saved["robustness"]
    assert robustness["standard"]["model"] == "clickcast" and robustness["standard"]["clean"] == saved["model"]
    assert robustness["adversarial"]["clean"] == saved["ablations"]["with_adversarial"]
    for run in (robustness["standard"], robustness["adversarial"]):
        for m in METRICS:
            assert run["relative_drop"][m] == pytest.approx(1 - run["noisy"][m] / run["clean"][m]), m
    assert saved["data"]["test_events"] > 0
    # Both fits of every model and baseline are scored; ablations only have the final fit.
    assert set(saved["train_only"]) == BASELINES | {"sasrec", "clickcast"}
    assert all(set(scores) == set(METRICS) for scores in saved["train_only"].values())
    assert saved["data"]["final_items_known"] >= saved["data"]["items_known"]
    assert 1 <= saved["timings"]["model_epochs"] <= tiny_config().finetune_epochs
    assert saved["timings"]["inference"]["ms_per_event_batch_64"] > 0
    served = saved["timings"]["inference_served"]  # the exported graph, as Triton runs it
    assert "error" not in served, served
    assert served["ms_per_event_batch_1"] > 0
    # The model's gain, with its interval, over the strongest baseline and over each ablation.
    assert set(saved["gains"]["over"]) == {strongest_baseline(saved["baselines"])[0]} | set(saved["ablations"])
    for name, gain in saved["gains"]["over"].items():  # each gain compares the final test scores
        other = (saved["baselines"] | saved["ablations"])[name]
        for m in METRICS:
            expected = saved["model"][m] / other[m] - 1 if other[m] else None
            assert gain[m]["gain"] == pytest.approx(expected), (name, m)
    for name in ("training_curves.png", "metrics.png", "gains.png", "metrics.md", "model/config.json"):
        assert (out / name).is_file()
    assert strongest_baseline(metrics["baselines"])[0] in BASELINES | {"sasrec"}


def test_habitual_users_make_the_user_frequency_baseline_strong(trained):
    _, _, metrics = trained
    assert metrics["baselines"]["user_frequency"]["acc@5"] > 5 * metrics["baselines"]["most_popular"]["acc@5"]


def test_evaluate_command_rescores_the_saved_model(trained, capsys):
    csv, out, metrics = trained
    assert main(["evaluate", "--model", str(out), "--data", str(csv)]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["metrics"]["mrr"] == pytest.approx(metrics["model"]["mrr"], abs=1e-6)


def test_variants_and_ablations_change_only_their_part():
    from trainer.model import ClickcastConfig

    quick = ClickcastConfig.quick()
    sasrec = variant(quick, ClickcastConfig.sasrec())
    assert sasrec.name == "sasrec" and not sasrec.use_text and sasrec.finetune_epochs == quick.finetune_epochs
    ablations = ablation_configs(quick.replace(adversarial=True))
    assert set(ablations) == {"no_pretraining", "no_text", "no_adversarial"}
    assert ablations["no_text"].replace(use_text=True, name="clickcast") == quick.replace(adversarial=True)


def test_quick_run_skips_sasrec_and_ablations_and_tests_robustness_on_the_model(tmp_path):
    csv = tmp_path / "c.csv"
    write_csv(csv, habitual_frame(n_users=6, days=15, seed=1))
    metrics = run_training(csv, tmp_path / "out", quick=True, config=tiny_config())
    assert set(metrics["baselines"]) == BASELINES and metrics["ablations"] == {}
    assert metrics["train_only"] == {}  # one fit each: no final fit in quick runs
    robustness = metrics["robustness"]
    assert set(robustness) == {"noise_fraction", "seed", "events", "standard"}
    assert robustness["events"] == metrics["data"]["test_events"]  # fewer than the quick cap here
    assert robustness["standard"]["clean"] == metrics["model"]
    assert set(metrics["gains"]["over"]) == {strongest_baseline(metrics["baselines"])[0]}
