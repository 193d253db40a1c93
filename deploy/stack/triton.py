"""NVIDIA Triton on CPU from the `nvidia-pytriton` wheel, serving the python-backend model repository."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import shutil
import sys
import sysconfig
from pathlib import Path

from deploy.stack.probes import http_ok
from deploy.stack.process import ServiceError
from deploy.stack.service import Service
from deploy.stack.stub_python import ensure_stub_python
from streams.settings import PROJECT_ROOT, Settings, TritonSettings

SERVING_CODE = PROJECT_ROOT / "trainer" / "serving" / "triton_model.py"  # what export copies as model.py

# glibc malloc for the model instances: a batch's tensors (up to tens of MB) come from the heap and stay there
# when freed, instead of being mapped and unmapped on every request; the default re-faulted ~20 MB a batch-64
# request (~5,000 page faults), ~20% of its time. An operator's own values in the environment win.
MALLOC_ENV = {"MALLOC_MMAP_THRESHOLD_": str(64 << 20), "MALLOC_TRIM_THRESHOLD_": str(256 << 20)}

# Seconds between repository scans: a newly exported model version goes live without a restart.
REPOSITORY_POLL_S = 5
SHM_PREFIX = "triton_python_backend_shm_region_"
PYTHON_TAG = f"{sys.version_info.major}.{sys.version_info.minor}"


class ModelMissingError(RuntimeError):
    """The model repository has no version to serve."""


def model_versions(repository: Path, model_name: str) -> list[int]:
    model_dir = repository / model_name
    if not model_dir.is_dir():
        return []
    return sorted(int(p.name) for p in model_dir.iterdir() if p.is_dir() and p.name.isascii() and p.name.isdecimal())


def wait_served(http_url: str, model_name: str, version: int, timeout_s: float) -> float | None:
    """Seconds until Triton's repository poll has loaded `version` and the server is ready; None past `timeout_s`."""
    import time

    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(http_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout_s:
            # The server as a whole is not ready for a moment while it unloads the previous version; before the
            # version loads, or while the server starts, it answers with an error.
            with contextlib.suppress(Exception):
                if client.is_model_ready(model_name, str(version)) and client.is_server_ready():
                    return time.monotonic() - started
            time.sleep(1.0)
    finally:
        client.close()
    return None


def ready_versions(http_url: str, model_name: str, timeout_s: float = 2.0) -> set[int]:
    """The versions of `model_name` that Triton reports ready (serving); empty when no Triton answers there."""
    import tritonclient.http as httpclient

    try:
        client = httpclient.InferenceServerClient(http_url, connection_timeout=timeout_s, network_timeout=timeout_s)
        try:
            index = client.get_model_repository_index()
        finally:
            client.close()
    except Exception:  # not running (or not reachable): nothing is known to be served
        return set()
    return {
        int(entry["version"])
        for entry in index
        if entry.get("name") == model_name and entry.get("state") == "READY" and str(entry.get("version")).isdecimal()
    }


def stale_version(repository: Path, model_name: str, backend_source: Path = SERVING_CODE) -> Path | None:
    """The newest version's folder if its model.py is not the current serving code, else None.

    Triton keeps one config.pbtxt per model, rewritten by each export: after a change of the request contract,
    a version exported before it no longer loads, and exporting it again (from its own files) fixes that."""
    versions = model_versions(repository, model_name)
    if not versions:
        return None
    newest = repository / model_name / str(versions[-1])
    served = newest / "model.py"
    if served.is_file() and served.read_bytes() == backend_source.read_bytes():
        return None
    return newest


def wheel_dirs() -> tuple[Path, Path]:
    """(the wheel's `pytriton/tritonserver` folder, its bundled shared libraries `nvidia_pytriton.libs`)."""
    spec = importlib.util.find_spec("pytriton")  # finds the package without importing it
    if spec is None or spec.origin is None:
        raise FileNotFoundError("nvidia-pytriton is not installed: run `make setup`")
    package = Path(spec.origin).parent
    return package / "tritonserver", package.parent / "nvidia_pytriton.libs"


def server_args(triton: TritonSettings, repository: Path, backend_dir: Path) -> list[str]:
    """Command-line flags for a CPU-only server on loopback, polling the repository for new versions."""
    return [
        f"--model-repository={repository.resolve()}",
        f"--backend-directory={backend_dir}",
        f"--http-address={triton.host}",
        f"--http-port={triton.http_port}",
        f"--grpc-address={triton.host}",
        f"--grpc-port={triton.grpc_port}",
        f"--metrics-address={triton.host}",
        f"--metrics-port={triton.metrics_port}",
        "--model-control-mode=poll",
        f"--repository-poll-secs={REPOSITORY_POLL_S}",
        "--disable-auto-complete-config",
        "--allow-gpu-metrics=false",
        "--pinned-memory-pool-byte-size=0",
        "--cuda-memory-pool-byte-size=0:0",
        "--exit-timeout-secs=5",
    ]


def server_env(base: dict[str, str], venv_bin: Path, python_libdir: str, bundled_libs: Path) -> dict[str, str]:
    """The python-backend stub finds its venv through PATH (PYTHONPATH is ignored) and needs our
    Python's own libpython before the wheel's bundled libraries (else `undefined symbol: _PyModule_Add`)."""
    env = MALLOC_ENV | base
    env["PATH"] = f"{venv_bin}{os.pathsep}{base.get('PATH', '')}"
    env["LD_LIBRARY_PATH"] = f"{python_libdir}{os.pathsep}{bundled_libs}"
    return env


def python_libdir(config_var=sysconfig.get_config_var) -> str:
    """The folder of this Python's shared libpython, which the python-backend stub must load. A Python built without
    one (pyenv's default: no --enable-shared) would leave the stub the wheel's bundled libpython, of another patch
    release, and Triton would fail at `stack up` with an undefined symbol; this says so at `stack prepare`."""
    libdir, soname = config_var("LIBDIR"), config_var("INSTSONAME")
    if not (libdir and soname and (Path(libdir) / soname).is_file()):
        raise ServiceError(
            f"Triton's python backend needs this Python's shared library ({soname or 'libpython'} in {libdir}), which "
            f"{sys.executable} lacks: use Debian's python3.11 (`make setup` installs libpython3.11) or a Python "
            "built with --enable-shared"
        )
    return libdir


def stale_shm_regions(shm_dir: Path = Path("/dev/shm")) -> list[Path]:
    """This user's python-backend shared-memory files that no live process maps (left by servers that died).
    Another user's are never ours to judge: their processes' maps are unreadable, so they would all look stale."""
    uid = os.getuid()
    regions = [p for p in shm_dir.glob(f"{SHM_PREFIX}*") if _owner(p) == uid]
    if not regions:
        return []
    mapped: set[str] = set()
    for maps in Path("/proc").glob("[0-9]*/maps"):
        try:
            text = maps.read_text()
        except OSError:
            continue
        mapped.update(line.split()[-1] for line in text.splitlines() if SHM_PREFIX in line)
    return [p for p in regions if str(p) not in mapped]


def _owner(path: Path) -> int | None:
    try:
        return path.stat().st_uid
    except OSError:  # gone meanwhile
        return None


class TritonService(Service):
    name = "triton"
    start_timeout_s = 120.0
    cause_pattern = r"failed to load '|error: creating server|Address already in use"

    def __init__(self, settings: Settings) -> None:
        super().__init__(settings.run_dir)
        self.triton = settings.triton
        self.repository = settings.model_repository
        self.cache_dir = settings.cache_dir

    @property
    def port(self) -> int:
        return self.triton.http_port

    def healthy(self) -> bool:
        return http_ok(f"http://{self.triton.http_url}/v2/health/ready")

    def check_model(self) -> None:
        if not model_versions(self.repository, self.triton.model_name):
            raise ModelMissingError(
                f"no version of model '{self.triton.model_name}' in {self.repository}: run "
                "`clickcast train --quick` then `clickcast export` (or `make model`)"
            )

    def prepare(self) -> None:
        wheel_dirs()
        python_libdir()
        ensure_stub_python(self.cache_dir)

    def _launch(self) -> None:
        self.check_model()
        server_dir, bundled_libs = wheel_dirs()
        backend_dir = self._prepare_backend_dir(server_dir)
        for region in stale_shm_regions():
            with contextlib.suppress(OSError):  # gone meanwhile, or not ours to remove after all
                region.unlink()
        stub_bin = ensure_stub_python(self.cache_dir)
        env = server_env(dict(os.environ), stub_bin, python_libdir(), bundled_libs)
        argv = [str(server_dir / "bin" / "tritonserver"), *server_args(self.triton, self.repository, backend_dir)]
        self.process.start(argv, env=env, cwd=self.directory)

    def _prepare_backend_dir(self, server_dir: Path) -> Path:
        """Triton wants the backend library, its utils module and the stub for our Python in one folder."""
        backend_dir = self.directory / "backends"
        python_dir = backend_dir / "python"
        python_dir.mkdir(parents=True, exist_ok=True)
        sources = [
            server_dir / "backends" / "python" / "libtriton_python.so",
            server_dir / "backends" / "python" / "triton_python_backend_utils.py",
            server_dir / "python_backend_stubs" / PYTHON_TAG / "triton_python_backend_stub",
        ]
        for source in sources:
            shutil.copy2(source, python_dir / source.name)
        return backend_dir
