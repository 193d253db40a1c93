"""Triton's flags, environment, model check and shared-memory clean-up."""

from __future__ import annotations

import mmap
from pathlib import Path

import pytest

from deploy.stack.process import ServiceError
from deploy.stack.triton import (
    SHM_PREFIX,
    ModelMissingError,
    TritonService,
    model_versions,
    python_libdir,
    server_args,
    server_env,
    stale_shm_regions,
)
from streams.settings import Settings, TritonSettings
from tests.deploy.tiny_model import write_tiny_model


def test_server_args_use_the_configured_ports_and_poll_the_repository(tmp_path):
    triton = TritonSettings(http_port=28000, grpc_port=28001, metrics_port=28002)
    args = server_args(triton, tmp_path / "repo", tmp_path / "backends")
    assert f"--model-repository={(tmp_path / 'repo').resolve()}" in args
    assert "--http-port=28000" in args and "--grpc-port=28001" in args and "--metrics-port=28002" in args
    assert "--model-control-mode=poll" in args
    assert any(a.startswith("--repository-poll-secs=") for a in args)
    assert "--http-address=127.0.0.1" in args


def test_server_env_puts_the_stub_venv_and_python_libdir_first(tmp_path):
    env = server_env({"PATH": "/usr/bin", "HOME": "/root"}, tmp_path / "bin", "/py/lib", tmp_path / "libs")
    assert env["PATH"].split(":")[0] == str(tmp_path / "bin")
    assert env["PATH"].endswith("/usr/bin")
    assert env["LD_LIBRARY_PATH"].split(":") == ["/py/lib", str(tmp_path / "libs")]
    assert env["HOME"] == "/root"


def test_server_env_keeps_model_tensors_on_the_heap_unless_the_operator_says_otherwise(tmp_path):
    env = server_env({"PATH": "/usr/bin"}, tmp_path / "bin", "/py/lib", tmp_path / "libs")
    assert int(env["MALLOC_MMAP_THRESHOLD_"]) >= 32 << 20
    own = server_env({"MALLOC_MMAP_THRESHOLD_": "131072"}, tmp_path / "bin", "/py/lib", tmp_path / "libs")
    assert own["MALLOC_MMAP_THRESHOLD_"] == "131072"


def test_model_versions_lists_numeric_folders_only(tmp_path):
    assert model_versions(tmp_path, "clickcast") == []
    write_tiny_model(tmp_path, version=2)
    write_tiny_model(tmp_path, version=10)
    (tmp_path / "clickcast" / "notes").mkdir()
    assert model_versions(tmp_path, "clickcast") == [2, 10]


def test_up_refuses_an_empty_repository_with_the_command_to_run(tmp_path):
    service = TritonService(Settings(run_dir=tmp_path / "run", model_repository=tmp_path / "repo"))
    with pytest.raises(ModelMissingError, match=r"clickcast train --quick.*clickcast export.*make model"):
        service.check_model()


def test_stale_shm_regions_spares_regions_a_live_process_maps(tmp_path):
    stale = tmp_path / f"{SHM_PREFIX}dead"
    live = tmp_path / f"{SHM_PREFIX}live"
    other = tmp_path / "some_other_file"
    for path in (stale, live, other):
        path.write_bytes(b"\0" * 4096)
    with live.open("r+b") as handle, mmap.mmap(handle.fileno(), 4096):
        found = stale_shm_regions(tmp_path)
    assert found == [stale]
    assert stale_shm_regions(Path(tmp_path / "missing")) == []


def test_stale_shm_regions_leave_other_users_regions_alone(tmp_path, monkeypatch):
    region = tmp_path / f"{SHM_PREFIX}theirs"
    region.write_bytes(b"\0" * 4096)  # no process maps it, but it is not ours
    monkeypatch.setattr("os.getuid", lambda: region.stat().st_uid + 1)
    assert stale_shm_regions(tmp_path) == []


def test_a_version_exported_with_other_serving_code_is_stale(tmp_path):
    from deploy.stack.triton import stale_version

    serving = tmp_path / "triton_model.py"
    serving.write_text("# current serving code\n")
    repository = tmp_path / "repo"
    assert stale_version(repository, "clickcast", serving) is None  # nothing exported yet
    for version, code in ((1, "# current serving code\n"), (2, "# the request contract before\n")):
        (repository / "clickcast" / str(version)).mkdir(parents=True)
        (repository / "clickcast" / str(version) / "model.py").write_text(code)
    assert stale_version(repository, "clickcast", serving) == repository / "clickcast" / "2"  # the newest one
    (repository / "clickcast" / "2" / "model.py").write_text("# current serving code\n")
    assert stale_version(repository, "clickcast", serving) is None


def test_a_python_without_its_shared_library_is_refused_at_prepare_with_the_fix(tmp_path):
    static_only = {"LIBDIR": str(tmp_path), "INSTSONAME": "libpython3.11.so.1.0"}
    with pytest.raises(ServiceError, match=r"libpython3.11.so.1.0 in .*--enable-shared"):
        python_libdir(static_only.get)
    (tmp_path / "libpython3.11.so.1.0").write_bytes(b"")
    assert python_libdir(static_only.get) == str(tmp_path)
