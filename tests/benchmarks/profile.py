"""Where the pipeline's CPU goes: py-spy on the workers and Triton's model processes during a phase.

It is not a project dependency: `pip install py-spy` to use `clickcast bench e2e --profile`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

TOP = 30
RATE = 100  # samples per second


def py_spy() -> str | None:
    return shutil.which("py-spy") or shutil.which("py-spy", path=str(Path(sys.executable).parent))


def triton_model_pids(model_name: str, triton_pid: int | None) -> list[int]:
    """The python-backend stub processes running `model_name` (one per model instance) under the Triton server
    `triton_pid` (its process group: it runs in a session of its own), not another checkout's or orphaned ones."""
    if triton_pid is None:
        return []
    pids = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            argv = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].endswith(b"triton_python_backend_stub") and f"/{model_name}/".encode() in argv[1]:
            with contextlib.suppress(OSError):  # gone meanwhile
                if os.getpgid(int(proc.name)) == triton_pid:
                    pids.append(int(proc.name))
    return pids


def sample_count(raw: str) -> int:
    return sum(int(line.rpartition(" ")[2]) for line in raw.splitlines() if line.rpartition(" ")[2].isdigit())


# Frames under every sample of a thread (event loop, thread start-up, entry points) say nothing.
PLUMBING = (
    "asyncio/",
    "threading.py",
    "concurrent/futures/",
    "mode/worker.py",
    "streams/cli.py",
    "streams/commands.py",
)


def top_functions(raw: str, top: int = TOP) -> list[dict]:
    """Inclusive share of samples per function from py-spy's raw (collapsed stack) output."""
    total = 0
    inclusive: Counter[str] = Counter()
    for line in raw.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        total += int(count)
        seen = set()
        for frame in stack.split(";"):
            name, _, where = frame.partition(" (")
            where = where.split(":")[0].split("site-packages/")[-1]
            if name == "<module>" or where.startswith(PLUMBING) or where.endswith(PLUMBING):
                continue
            key = f"{name} ({where})" if where else name
            if key not in seen:
                seen.add(key)
                inclusive[key] += int(count)
    return [{"function": k, "pct": round(100.0 * v / total, 1)} for k, v in inclusive.most_common(top)] if total else []


class Profiler:
    """py-spy record on each named pid from `start()` until `stop()`.

    `gil_pids` (the workers) are sampled while they hold the GIL: their Python is the question.
    `active_pids` (Triton's model processes) are sampled whenever a thread runs: torch releases the GIL
    while it computes.
    """

    def __init__(self, gil_pids: dict[str, int], active_pids: dict[str, int], directory: Path) -> None:
        self.pids = {**gil_pids, **active_pids}
        self._gil = set(gil_pids)
        self.directory = directory
        self._procs: dict[str, subprocess.Popen] = {}
        self._began = 0.0

    def start(self) -> None:
        exe = py_spy()
        if exe is None:
            raise RuntimeError("py-spy not found: pip install py-spy")
        self.directory.mkdir(parents=True, exist_ok=True)
        for name, pid in self.pids.items():
            argv = [exe, "record", "--pid", str(pid), "--rate", str(RATE), "--nonblocking", "--format", "raw"]
            argv += ["-o", str(self.directory / f"{name}.txt"), *(["--gil"] if name in self._gil else [])]
            self._procs[name] = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self._began = time.monotonic()

    def stop(self) -> dict[str, dict]:
        """Stop recording (py-spy writes its file on SIGINT). Per process: the share of the time it was
        busy (held the GIL, or for model processes ran any thread; 100% = one core's worth of samples),
        and the functions that share went to."""
        seconds = time.monotonic() - self._began
        out = {}
        for name, proc in self._procs.items():
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
            path = self.directory / f"{name}.txt"
            raw = path.read_text() if path.exists() else ""
            out[name] = {
                "busy_pct": round(100.0 * sample_count(raw) / (RATE * seconds), 1),
                "top": top_functions(raw),
            }
        return out
