"""Resident memory of each part of the stack after a phase, read from /proc.

Beside CPU per event (cpu.py): the figure to watch as the user count and the load grow. The peak is a process's
lifetime peak (VmHWM): for a phase's own workers, their busiest moment in the run; for the stack's broker, Triton and
Redis, since they started. Summed resident memory counts pages the processes share once per process.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def resident_mb(pid: int) -> tuple[float, float] | None:
    """(resident now, peak resident) in MiB of a process; None once it is gone."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    kib = {}
    for line in status.splitlines():
        name, _, value = line.partition(":")
        if name in ("VmRSS", "VmHWM"):
            kib[name] = int(value.split()[0])
    if len(kib) < 2:  # a zombie has no memory left to report
        return None
    return kib["VmRSS"] / 1024.0, kib["VmHWM"] / 1024.0


def memory_mb(groups: dict[str, Iterable[int]]) -> dict[str, dict[str, float]]:
    """Per named process group: the resident MiB of its processes summed, and its largest single peak."""
    out = {}
    for name, pids in groups.items():
        figures = [f for pid in pids if (f := resident_mb(pid)) is not None]
        out[name] = {
            "resident": round(sum(now for now, _ in figures), 1),
            "peak_process": round(max((peak for _, peak in figures), default=0.0), 1),
        }
    return out
