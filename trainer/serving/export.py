"""`export_model`: a trained model folder -> a new numbered version in a Triton model repository.

The version folder holds the python-backend `model.py`, the model files (config, vocab, weights), the scoring graph
that `model.py` runs (`model.onnx`, checked against the torch network as it is written) and a snapshot
of the code that scores them (the `trainer`, `features` and `schemas` packages, in `code/`), so a version keeps
working when the project's code changes after it was exported. The check runs this process's modules, so an export
is refused when a file of that code changed since the process started: the snapshot would hold other code.
The model's `config.pbtxt` is (re)written next to the versions. Each appears atomically (written aside, then renamed),
so a polling Triton never sees half of one. A first export writes the config before its version, so the version never
shows up without one. A later export that changes the config (a new history length or top-k: the graph holds both)
writes it after the new version, and a poll between the two can still see one without the other; versions exported
before such a change no longer load. Exports publish one at a time (a lock file in the model's folder), so the config
left is the newest version's.
"""

from __future__ import annotations

import compileall
import fcntl
import importlib.util
import logging
import os
import shutil
import tempfile
import time
from collections.abc import Collection
from pathlib import Path

from deploy.stack.triton import SERVING_CODE, model_versions
from trainer.model.bundle import CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE, ClickcastModel
from trainer.serving.graph import GRAPH_FILE, export_graph
from trainer.serving.triton_config import (
    DEFAULT_INSTANCES,
    DEFAULT_MAX_BATCH_SIZE,
    DEFAULT_TOP_K,
    KEEP_VERSIONS,
    triton_config,
)

log = logging.getLogger(__name__)

MODEL_FILES = (CONFIG_FILE, VOCAB_FILE, WEIGHTS_FILE)
CODE_DIR = "code"  # model.py puts it first on sys.path
CODE_PACKAGES = ("trainer", "features", "schemas")
LOCK_FILE = ".export.lock"  # in the model's folder: exports publish one at a time
ISSUED_FILE = ".last_version"  # in the model's folder: the highest version number any export issued


def package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ModuleNotFoundError(f"package {name} not found")
    return Path(next(iter(spec.submodule_search_locations)))


def export_model(
    model_dir: str | Path,
    repository: str | Path,
    model_name: str = "clickcast",
    top_k: int = DEFAULT_TOP_K,
    max_batch_size: int = DEFAULT_MAX_BATCH_SIZE,
    instances: int = DEFAULT_INSTANCES,
    keep: int = KEEP_VERSIONS,
    serving: Collection[int] = (),
) -> int:
    """Copy the model in `model_dir` (as saved by `ClickcastRecommender.save`) into
    `repository/model_name/<N+1>/`; returns N+1. Versions older than the newest `keep` are deleted (Triton serves the
    newest alone; the ones kept are what an operator rolls back to), except those in `serving`: the versions Triton
    serves, which is an older one while newer ones fail to load."""
    if keep < 2:
        # The version Triton serves goes only once the new one loads: with one kept, a new version that failed to
        # load would leave nothing served.
        raise ValueError(f"keep {keep}: the new version and the one served before it stay, at least 2")
    source = Path(model_dir)
    missing = [f for f in MODEL_FILES if not (source / f).is_file()]
    if missing:
        raise FileNotFoundError(f"{source} is not a trained model folder (no {', '.join(missing)})")
    model = ClickcastModel.load(source)  # fails here, not inside Triton, on an unreadable model
    cfg = model.cfg
    if top_k > model.n_answerable:
        # Triton would fail every request (top-k past the vocabulary) or answer padding with a -inf score.
        raise ValueError(f"the model knows {model.n_answerable} items, fewer than the top {top_k} asked")
    target = Path(repository) / model_name
    target.mkdir(parents=True, exist_ok=True)
    config = triton_config(model_name, cfg.max_len, top_k, max_batch_size, instances)
    config_path = target / "config.pbtxt"
    # A non-numeric folder name: Triton ignores it while it is being filled.
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=target))
    staging.chmod(0o755)
    try:
        export_graph(model, staging / GRAPH_FILE, top_k)  # first: its check is what most likely refuses a model
        for name in MODEL_FILES:
            shutil.copy2(source / name, staging / name)
        shutil.copy2(SERVING_CODE, staging / "model.py")
        for package in CODE_PACKAGES:
            ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "results")  # trainer/results: figures, not code
            shutil.copytree(package_dir(package), staging / CODE_DIR / package, ignore=ignore)
        _refuse_code_changed_since(staging / CODE_DIR, process_started())
        # Compiled here: else the stub writes __pycache__ into the version folder on load, and Triton's
        # repository poll takes that change for a new model and loads the version a second time.
        if not compileall.compile_dir(staging, quiet=2):
            raise RuntimeError(f"could not compile the model code in {staging}")
        # One export at a time from here: the newest version's config is the one left, whatever order two exports
        # finish in. The lock file is opened for writing (NFS emulates flock with fcntl locks, which need that);
        # Triton ignores it, as it ignores every entry of a model folder that is not a version number.
        with open(target / LOCK_FILE, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)  # released as the file closes
            if not config_path.exists():
                _replace(config_path, config)
            version = _publish(staging, Path(repository), model_name)
            if config_path.read_text() != config:
                _replace(config_path, config)
            for old in sorted(model_versions(Path(repository), model_name))[:-keep]:
                if old in serving:
                    continue
                try:
                    shutil.rmtree(target / str(old))
                except OSError as exc:  # the new version is out: a version left behind is not worth failing for
                    log.warning("could not delete version %s of %s: %s", old, model_name, exc)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return version


def process_started() -> float:
    """The latest time, in `time.time()` terms, at which this process can have started: the kernel counts its start in
    clock ticks after boot (10 ms), rounded up here. Imports come later (the interpreter starts first), so a file
    modified before then was read by them as it is. psutil's start times round the boot time to whole seconds."""
    try:
        stat = Path("/proc/self/stat").read_text()
    except OSError:  # no procfs (macOS): psutil's start time, a second later to be safe
        import psutil

        return psutil.Process().create_time() + 1.0
    ticks = int(stat.rpartition(")")[2].split()[19]) + 1  # field 22, starttime
    return time.time() - (time.clock_gettime(time.CLOCK_BOOTTIME) - ticks / os.sysconf("SC_CLK_TCK"))


def _refuse_code_changed_since(code: Path, started: float) -> None:
    """RuntimeError when a file of the copied code changed after `started` (this process's start): the graph was
    checked by the modules this process imported, and the version would run other code than theirs."""
    # copy2 keeps each file's modification time.
    changed = sorted(str(p.relative_to(code)) for p in code.rglob("*.py") if p.stat().st_mtime > started)
    if changed:
        raise RuntimeError(
            f"{len(changed)} code files changed since this process started ({', '.join(changed[:3])}"
            f"{', ...' if len(changed) > 3 else ''}): the version would not run the code its graph was checked with; "
            "export from a new process"
        )


def _publish(staging: Path, repository: Path, model_name: str) -> int:
    """Rename `staging` to the next version number, chosen at the rename: another export may have taken the number
    while this one was building (the rename then fails on its non-empty folder, and the next number is tried), and a
    number is never issued twice (`ISSUED_FILE`): after a rollback deletes the newest version, the next export takes
    a new number, so a prediction's model version names one model only."""
    folder = repository / model_name
    taken = _last_issued(folder)
    while True:
        version = max([taken, *model_versions(repository, model_name)]) + 1
        try:
            os.rename(staging, folder / str(version))
        except OSError:
            if not (folder / str(version)).exists():
                raise
            taken = version  # taken meanwhile, or a stray file of that name: the next number
            continue
        try:
            _replace(folder / ISSUED_FILE, f"{version}\n")
        except OSError as exc:  # the version is out: the folders still tell the next export what was issued
            log.warning("could not record version %s in %s: %s", version, folder / ISSUED_FILE, exc)
        return version


def _last_issued(folder: Path) -> int:
    try:
        return int((folder / ISSUED_FILE).read_text())
    except FileNotFoundError:
        return 0
    except (OSError, ValueError) as exc:  # unreadable, or not this code's record: the folders still tell what was used
        log.warning("ignoring %s (%s)", folder / ISSUED_FILE, exc)
        return 0


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)
