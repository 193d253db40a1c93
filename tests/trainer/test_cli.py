import gzip
import json

import pytest

from streams.cli import main
from tests.trainer.synthetic import frame, habitual_frame, random_frame, write_csv


@pytest.fixture
def csv(tmp_path):
    path = tmp_path / "c.csv"
    write_csv(path, random_frame(n_events=60))
    return path


def run(capsys, *argv):
    code = main(list(argv))
    return code, capsys.readouterr().err


def test_missing_data_file_is_a_one_line_error(capsys, tmp_path):
    code, err = run(capsys, "train", "--data", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o"))
    assert code == 1 and err.count("\n") == 1 and "no data file" in err


def test_bad_column_mapping_and_missing_column_are_one_line_errors(capsys, csv, tmp_path):
    code, err = run(capsys, "train", "--data", str(csv), "--out", str(tmp_path), "--columns", "colour=x")
    assert code == 1 and "unknown field" in err
    code, err = run(capsys, "train", "--data", str(csv), "--out", str(tmp_path), "--columns", "item_id=venue")
    assert code == 1 and "venue" in err and err.count("\n") == 1


def test_too_few_events_and_missing_model_are_errors(capsys, csv, tmp_path):
    code, err = run(capsys, "train", "--data", str(csv), "--max-events", "3")
    assert code == 1 and "--max-events" in err
    code, err = run(capsys, "export", "--from", str(tmp_path))
    assert code == 1 and "no trained model" in err
    code, err = run(capsys, "evaluate", "--model", str(tmp_path), "--data", str(csv))
    assert code == 1 and "no trained model" in err


def test_a_file_too_small_to_train_on_is_a_one_line_error(capsys, csv, tmp_path):
    tiny = tmp_path / "tiny.csv"
    write_csv(tiny, frame([(f"u{i}", f"p{i % 3}", 60.0 * i) for i in range(12)]))  # no user has two events
    code, err = run(capsys, "train", "--quick", "--data", str(tiny), "--out", str(tmp_path / "o"))
    # Refused before any baseline trains: the error is the last line, without a traceback.
    assert code == 1 and "too few events to train" in err.splitlines()[-1] and "Traceback" not in err
    assert "most_popular" not in err
    one = tmp_path / "one.csv"  # repeats of one row: a single event once they are dropped, none in training
    write_csv(one, frame([("u0", "p0", 0.0)] * 20))
    code, err = run(capsys, "train", "--quick", "--data", str(one), "--out", str(tmp_path / "o"))
    assert code == 1 and "too few events to train" in err.splitlines()[-1] and "Traceback" not in err
    assert not (tmp_path / "o").exists()  # made for the run, left behind by none of the refused ones
    code, err = run(capsys, "train", "--quick", "--data", str(one), "--out", str(tmp_path / "a" / "b" / "c"))
    assert code == 1 and not (tmp_path / "a").exists()  # nor the folders made above it
    kept = tmp_path / "kept"
    kept.mkdir()
    code, err = run(capsys, "train", "--quick", "--data", str(one), "--out", str(kept))
    assert code == 1 and kept.is_dir()  # a folder that was there stays
    code, err = run(capsys, "train", "--quick", "--data", str(csv), "--out", str(tiny))
    assert code == 1 and err.count("\n") == 1 and "is a file" in err
    code, err = run(capsys, "train", "--quick", "--data", str(csv), "--out", str(tiny / "below"))
    assert code == 1 and err.count("\n") == 1 and "cannot use --out" in err


def test_a_folder_or_a_broken_gzip_as_data_is_a_one_line_error(capsys, tmp_path, csv, fitted):
    broken = tmp_path / "broken.csv.gz"
    broken.write_text("this is not gzip")
    truncated = tmp_path / "truncated.csv.gz"  # EOFError, neither OSError nor ValueError
    truncated.write_bytes(gzip.compress(csv.read_bytes() * 50)[:-200])
    for data in (tmp_path, broken, truncated):
        code, err = run(capsys, "train", "--quick", "--data", str(data), "--out", str(tmp_path / "o"))
        assert code == 1 and err.count("\n") == 1, err
        assert data != tmp_path or "is a folder" in err
    fitted.save(tmp_path / "model")
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(tmp_path))
    assert code == 1 and err == f"clickcast evaluate: {tmp_path} is a folder, not a data file\n"


def test_a_data_file_evaluate_cannot_use_is_named_by_its_path_once(capsys, tmp_path, fitted):
    fitted.save(tmp_path / "model")
    header = tmp_path / "header.csv"
    header.write_text("user_id,poi_id,latitude,longitude,utc_time_approx,category_name\n")
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(header))
    assert code == 1 and err == f"clickcast evaluate: {header}: no events\n"
    venues = tmp_path / "venues.csv"  # the reader's message names the file alone: the path takes its place
    venues.write_text("user_id,venue,latitude,longitude,utc_time_approx,category_name\n")
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(venues))
    assert (
        code == 1
        and err.startswith(f"clickcast evaluate: {venues} has no column(s) poi_id")
        and err.count("venues") == 1
    )


def test_an_incomplete_or_corrupt_model_folder_is_a_one_line_error(capsys, csv, tmp_path):
    model = tmp_path / "model"
    model.mkdir()
    (model / "config.json").write_text("{not json")
    code, err = run(capsys, "export", "--from", str(model), "--repository", str(tmp_path / "repo"))
    assert code == 1 and err.count("\n") == 1, err
    code, err = run(capsys, "evaluate", "--model", str(model), "--data", str(csv))
    assert code == 1 and err.count("\n") == 1 and "cannot load the model" in err, err


@pytest.mark.parametrize("config", ["[]", '"text"', '{"hidden": "wide"}'])
def test_a_model_config_of_the_wrong_shape_is_a_one_line_error(capsys, csv, tmp_path, fitted, config):
    fitted.save(tmp_path / "model")
    (tmp_path / "model" / "config.json").write_text(config)
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(csv))
    assert code == 1 and err.count("\n") == 1 and "cannot load the model" in err, err


@pytest.mark.parametrize(
    "argv",
    [["--name", ""], ["--name", "../x"], ["--name", "a/b"], ["--wait", "-1"], ["--wait", "inf"], ["--keep", "1"]],
)
def test_an_export_name_or_wait_that_does_not_fit_is_refused_before_anything_is_written(capsys, tmp_path, argv):
    with pytest.raises(SystemExit) as exit_:
        main(["export", "--from", str(tmp_path), "--repository", str(tmp_path / "repo"), *argv])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and argv[0] in err
    assert not (tmp_path / "repo").exists()


def test_damaged_weights_are_a_one_line_error(capsys, csv, tmp_path, fitted):
    fitted.save(tmp_path / "model")
    (tmp_path / "model" / "weights.pt").write_bytes(b"not a torch file")
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(csv))
    assert code == 1 and err.count("\n") == 1 and "cannot load the model" in err, err


def test_evaluate_scores_only_events_after_the_models_training(capsys, tmp_path, fitted):
    fitted.save(tmp_path / "model")
    data = tmp_path / "habits.csv"
    write_csv(data, habitual_frame(n_users=16, days=40))  # the events the fixture's model was trained on
    code = main(["evaluate", "--model", str(tmp_path / "model"), "--data", str(data)])
    out, err = capsys.readouterr()
    assert code == 0 and "left out" not in err and json.loads(out)["metrics"]["events"] > 0
    # The first half of the file re-split: its "test" events lie inside the model's training period.
    n_half = len(habitual_frame(n_users=16, days=40)) // 2
    code, err = run(
        capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--max-events", str(n_half)
    )
    assert code == 1 and err.count("\n") == 1 and "older than the newest event the model was trained or tuned on" in err


def test_evaluate_leaves_out_the_validation_events_a_model_was_tuned_on(capsys, tmp_path):
    from tests.trainer.conftest import tiny_config
    from trainer.data import load_dataset
    from trainer.model import ClickcastRecommender

    data = tmp_path / "habits.csv"
    habits = habitual_frame(n_users=16, days=40)
    write_csv(data, habits.assign(ts=habits["ts"].round()))  # whole seconds, as real files hold them
    ck, split = load_dataset(data)
    model = ClickcastRecommender(tiny_config(finetune_epochs=1, patience=1))
    model.fit(ck, split)  # epochs and visit prior chosen on every validation event
    model.save(tmp_path / "model")
    code, err = run(capsys, "evaluate", "--model", str(tmp_path / "model"), "--data", str(data), "--split", "val")
    # Only the events at the newest validation event's second stay: the boundary is inclusive, because the re-split
    # of a training file puts events that share the last used event's second in the next part.
    n_val, at_newest = int(split.val.sum()), int((split.val & (ck.ts == ck.ts[split.val].max())).sum())
    assert code == 0 and f"left out {n_val - at_newest} of {n_val} val events" in err


def test_export_goes_where_the_settings_point_triton_by_default(capsys, tmp_path, fitted, monkeypatch):
    from streams.settings import get_settings

    fitted.save(tmp_path / "trained")
    monkeypatch.setenv("CLICKCAST_MODEL_REPOSITORY", str(tmp_path / "served"))
    monkeypatch.setenv("CLICKCAST_TRITON__MODEL_NAME", "next_place")
    get_settings.cache_clear()
    try:
        assert main(["export", "--from", str(tmp_path / "trained")]) == 0
    finally:
        get_settings.cache_clear()
    assert (tmp_path / "served" / "next_place" / "1" / "model.onnx").is_file()
    assert "version 1" in capsys.readouterr().out


@pytest.mark.parametrize("name", ["../escape", "", "a/b", ".."])
def test_a_settings_model_name_that_is_a_path_is_refused_before_anything_is_written(
    capsys, tmp_path, fitted, monkeypatch, name
):
    """--name is checked by its argparse type; the settings' name, its default, must be checked as well."""
    from streams.settings import get_settings

    fitted.save(tmp_path / "trained")
    monkeypatch.setenv("CLICKCAST_TRITON__MODEL_NAME", name)
    get_settings.cache_clear()
    try:
        code, err = run(capsys, "export", "--from", str(tmp_path / "trained"), "--repository", str(tmp_path / "r"))
    finally:
        get_settings.cache_clear()
    assert code == 1 and err.count("\n") == 1 and "is not a model name" in err, err
    assert not (tmp_path / "r").exists() and sorted(p.name for p in tmp_path.iterdir()) == ["trained"]


@pytest.mark.parametrize("command", ["train", "evaluate"])
@pytest.mark.parametrize("value", ["0", "-5", "x"])
def test_a_max_events_that_is_not_a_positive_count_is_refused(capsys, tmp_path, csv, command, value):
    """pandas' head(-5) would quietly drop the last five events instead."""
    model = ["--model", str(tmp_path)] if command == "evaluate" else ["--out", str(tmp_path / "o")]
    with pytest.raises(SystemExit) as exit_:
        main([command, "--data", str(csv), "--max-events", value, *model])
    err = capsys.readouterr().err
    assert exit_.value.code == 2 and err.count("\n") == 1 and "--max-events" in err, err
