import os
import subprocess
import sys
from pathlib import Path

import pytest

from trainer.model import ClickcastConfig
from trainer.serving.export import ISSUED_FILE, LOCK_FILE, export_model
from trainer.serving.triton_config import triton_config

REPO_ROOT = Path(__file__).resolve().parents[3]


def test_each_export_adds_the_next_version_with_model_files_and_config(fitted, tmp_path):
    fitted.save(tmp_path / "trained")
    repository = tmp_path / "repo"
    assert export_model(tmp_path / "trained", repository) == 1
    (repository / "clickcast" / "7").mkdir()  # versions continue after the highest one
    assert export_model(tmp_path / "trained", repository) == 8
    version = repository / "clickcast" / "8"
    assert sorted(p.name for p in version.iterdir()) == [
        "__pycache__",
        "code",
        "config.json",
        "model.onnx",
        "model.py",
        "vocab.json",
        "weights.pt",
    ]
    snapshot = version / "code"
    assert (snapshot / "trainer" / "model" / "repeat.py").read_text() == (
        REPO_ROOT / "trainer" / "model" / "repeat.py"
    ).read_text()
    assert (snapshot / "features" / "sequence.py").is_file() and (snapshot / "schemas" / "events.py").is_file()
    assert (snapshot / "trainer" / "model" / "__pycache__").is_dir()  # compiled: the stub writes nothing
    assert (REPO_ROOT / "trainer" / "results").is_dir() and not (snapshot / "trainer" / "results").exists()
    leftovers = [p.name for p in (repository / "clickcast").iterdir() if p.name.startswith(".")]
    assert sorted(leftovers) == [LOCK_FILE, ISSUED_FILE]  # no staging folder or config being written
    assert (repository / "clickcast" / ISSUED_FILE).read_text() == "8\n"
    config = (repository / "clickcast" / "config.pbtxt").read_text()
    assert config == triton_config("clickcast", fitted.config.max_len)
    assert 'name: "ITEM_IDS" data_type: TYPE_STRING dims: [ 1 ]' in config  # one joined string per history
    assert f'name: "TIMESTAMPS" data_type: TYPE_FP64 dims: [ {fitted.config.max_len} ]' in config


# Imports an exported model.py as Triton's stub does (with a stand-in for the backend's utils module) and lists the
# project modules it loaded, with where from.
LOADED = """
import sys, types
sys.modules["triton_python_backend_utils"] = types.ModuleType("triton_python_backend_utils")
sys.path.insert(0, sys.argv[1])
import model
ours = ("trainer", "features", "schemas", "streams", "deploy")
for name, module in sorted(sys.modules.items()):
    if name.split(".")[0] in ours:
        print(name, getattr(module, "__file__", None) or "")
"""


def test_a_version_runs_on_its_own_code_snapshot_alone(fitted, tmp_path):
    fitted.save(tmp_path / "trained")
    version = tmp_path / "repo" / "clickcast" / str(export_model(tmp_path / "trained", tmp_path / "repo"))
    out = subprocess.run(
        [sys.executable, "-c", LOADED, str(version)], capture_output=True, text=True, check=True, cwd=tmp_path
    ).stdout
    loaded = dict(line.partition(" ")[::2] for line in out.splitlines())
    assert "trainer.serving.graph" in loaded and "features.sequence" in loaded
    outside = {name: path for name, path in loaded.items() if path and not path.startswith(str(version / "code"))}
    assert not outside, outside  # e.g. deploy or streams from the working tree: a later edit there breaks the version


def test_code_edited_since_the_process_started_is_not_exported(fitted, tmp_path, monkeypatch):
    """The graph is checked by the modules imported when the process started; a file edited since would ship in the
    snapshot unchecked."""
    import shutil

    import trainer.serving.export as export

    edited = tmp_path / "edited" / "trainer"
    shutil.copytree(REPO_ROOT / "trainer", edited, ignore=shutil.ignore_patterns("__pycache__"))
    graph = edited / "serving" / "graph.py"
    graph.write_text(graph.read_text() + "\n# edited\n")  # now: after this process started
    package_dir = export.package_dir
    monkeypatch.setattr(export, "package_dir", lambda name: edited if name == "trainer" else package_dir(name))
    fitted.save(tmp_path / "trained")
    with pytest.raises(RuntimeError, match=r"1 code files changed since this process started \(trainer/serving/graph"):
        export_model(tmp_path / "trained", tmp_path / "repo")
    assert not (tmp_path / "repo" / "clickcast" / "1").exists()
    os.utime(graph, (0, 0))  # edited before the process started: what it imported
    assert export_model(tmp_path / "trained", tmp_path / "repo") == 1


def test_of_two_exports_at_once_the_newest_versions_config_is_left(fitted, tmp_path, monkeypatch):
    import threading

    import trainer.serving.export as export

    fitted.save(tmp_path / "trained")
    repository = tmp_path / "repo"
    export_model(tmp_path / "trained", repository)  # the config exists: both exports rewrite it after publishing
    publish, second = export._publish, {}

    def export_top_3() -> None:
        second["version"] = export_model(tmp_path / "trained", repository, top_k=3)

    def publish_then_let_another_export_run(staging, repo, name):
        version = publish(staging, repo, name)
        if "thread" not in second:  # the first export, right after its version appeared
            second["thread"] = threading.Thread(target=export_top_3)
            second["thread"].start()
            # Without the lock the other export publishes version 3 and writes its config meanwhile, and this one's
            # config, written next, would be left. With it, the other waits (and this wait times out).
            second["thread"].join(timeout=8)
        return version

    monkeypatch.setattr(export, "_publish", publish_then_let_another_export_run)
    first = export_model(tmp_path / "trained", repository, top_k=5)
    second["thread"].join(timeout=60)
    assert (first, second["version"]) == (2, 3)
    config = (repository / "clickcast" / "config.pbtxt").read_text()
    assert config == triton_config("clickcast", fitted.config.max_len, top_k=3)


def test_an_export_deletes_versions_older_than_the_newest_it_keeps(fitted, tmp_path):
    from deploy.stack.triton import model_versions

    fitted.save(tmp_path / "trained")
    repository = tmp_path / "repo"
    for _ in range(3):
        export_model(tmp_path / "trained", repository, keep=5)
    assert model_versions(repository, "clickcast") == [1, 2, 3]
    assert export_model(tmp_path / "trained", repository, keep=2) == 4
    assert sorted(model_versions(repository, "clickcast")) == [3, 4]
    with pytest.raises(ValueError, match=r"keep 1: .* at least 2"):
        export_model(tmp_path / "trained", repository, keep=1)


def test_a_first_version_never_appears_without_its_config(fitted, tmp_path, monkeypatch):
    import trainer.serving.export as export

    fitted.save(tmp_path / "trained")
    config = tmp_path / "repo" / "clickcast" / "config.pbtxt"
    rename, seen = export.os.rename, []

    def watched(src, dst):  # the version folder appears here, all at once
        seen.append(config.exists())
        rename(src, dst)

    monkeypatch.setattr(export.os, "rename", watched)
    export_model(tmp_path / "trained", tmp_path / "repo")
    assert seen == [True]


def test_an_export_whose_number_another_export_took_meanwhile_takes_the_next(fitted, tmp_path, monkeypatch):
    import trainer.serving.export as export

    fitted.save(tmp_path / "trained")
    versions, calls = export.model_versions, []

    def stale_once(repository, name):  # the first look happens before the other export's rename
        calls.append(1)
        if len(calls) == 1:
            (repository / name / "1").mkdir()
            (repository / name / "1" / "model.py").write_text("")  # the other export's version
            return []
        return versions(repository, name)

    monkeypatch.setattr(export, "model_versions", stale_once)
    assert export_model(tmp_path / "trained", tmp_path / "repo") == 2
    assert (tmp_path / "repo" / "clickcast" / "1" / "model.py").read_text() == ""  # left as the other export wrote it


def test_a_folder_without_a_model_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="not a trained model"):
        export_model(tmp_path, tmp_path / "repo")
    assert not (tmp_path / "repo").exists()


def test_a_top_k_beyond_the_models_items_is_refused(fitted, tmp_path):
    fitted.save(tmp_path / "trained")
    n_known = len(fitted.model.item_ids) - 2  # PAD and UNK are never answers
    with pytest.raises(ValueError, match=f"knows {n_known} items"):
        export_model(tmp_path / "trained", tmp_path / "repo", top_k=n_known + 1)
    assert export_model(tmp_path / "trained", tmp_path / "repo", top_k=n_known) == 1


def test_committed_config_matches_what_export_writes_for_the_full_and_quick_models():
    committed = (REPO_ROOT / "model_repository" / "clickcast" / "config.pbtxt").read_text()
    assert ClickcastConfig.full().max_len == ClickcastConfig.quick().max_len
    assert committed == triton_config("clickcast", ClickcastConfig.full().max_len)


def test_a_number_is_never_issued_twice_even_after_a_rollback_deletes_the_newest(fitted, tmp_path):
    import shutil

    fitted.save(tmp_path / "trained")
    repository = tmp_path / "repo"
    assert [export_model(tmp_path / "trained", repository) for _ in range(2)] == [1, 2]
    shutil.rmtree(repository / "clickcast" / "2")  # rolled back: Triton serves 1 again
    assert export_model(tmp_path / "trained", repository) == 3  # 2 named another model in earlier predictions


def test_a_stray_file_named_as_the_next_version_is_passed_over(fitted, tmp_path):
    fitted.save(tmp_path / "trained")
    (tmp_path / "repo" / "clickcast").mkdir(parents=True)
    (tmp_path / "repo" / "clickcast" / "1").write_text("not a version")
    assert export_model(tmp_path / "trained", tmp_path / "repo") == 2


def test_the_version_triton_serves_is_kept_however_old(fitted, tmp_path):
    """Newer versions that failed to load leave Triton on an old one: pruning by number alone would delete it."""
    from deploy.stack.triton import model_versions

    fitted.save(tmp_path / "trained")
    repository = tmp_path / "repo"
    for _ in range(3):
        export_model(tmp_path / "trained", repository, keep=5)
    assert export_model(tmp_path / "trained", repository, keep=2, serving={1}) == 4
    assert model_versions(repository, "clickcast") == [1, 3, 4]
