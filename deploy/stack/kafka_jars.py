"""Resolve the Kafka broker's jars from Maven Central into the project cache (once per version)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

POM = Path(__file__).resolve().parent.parent / "kafka" / "pom.xml"
COMPLETE_MARKER = ".complete"


def lib_dir(cache_dir: Path, version: str) -> Path:
    return cache_dir / f"kafka-{version}" / "lib"


def ensure_jars(cache_dir: Path, version: str) -> Path:
    """Return the folder of jars for `version`, running Maven first if it is not complete yet."""
    target = lib_dir(cache_dir, version)
    if (target / COMPLETE_MARKER).exists():
        return target
    mvn = shutil.which("mvn")
    if mvn is None:
        raise FileNotFoundError("mvn not found: run `make setup` (installs maven) to resolve Kafka's jars")
    if target.exists():  # a half-copied folder from an interrupted run
        shutil.rmtree(target)
    # -f with a relative outputDirectory would resolve against the POM's folder: pass it absolute.
    cmd = [
        mvn,
        "-q",
        "-B",
        "-f",
        str(POM),
        f"-Dkafka.version={version}",
        "dependency:copy-dependencies",
        f"-DoutputDirectory={target.resolve()}",
    ]
    result = subprocess.run(cmd, capture_output=True, text=True)
    if result.returncode != 0:
        detail = (result.stdout + result.stderr).strip().splitlines()[-10:]
        raise RuntimeError(f"Maven could not resolve kafka_2.13:{version}:\n" + "\n".join(detail))
    (target / COMPLETE_MARKER).touch()
    return target
