"""CPU time each part of the stack spends during a phase, read from /proc.

Wall-clock rates on a shared 2-core machine swing by 20% from run to run; CPU milliseconds per event are
steadier and say which process a throughput limit comes from (workers, Triton's model, the broker).
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

_TICKS_PER_S = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process so far; None once it is gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Fields after the command name, which is in parentheses and may itself hold spaces.
    fields = stat[stat.rindex(")") + 2 :].split()
    return (int(fields[11]) + int(fields[12])) / _TICKS_PER_S


class CpuMeter:
    """CPU milliseconds per event of named process groups between `start` and `stop`."""

    def __init__(self, groups: dict[str, Iterable[int]]) -> None:
        self.groups = {name: list(pids) for name, pids in groups.items()}
        self._start: dict[int, float] = {}

    def start(self) -> None:
        self._start = {
            pid: seconds for pids in self.groups.values() for pid in pids if (seconds := cpu_seconds(pid)) is not None
        }

    def stop(self, events: int) -> dict[str, float]:
        out = {}
        for name, pids in self.groups.items():
            used = sum(
                end - self._start[pid] for pid in pids if pid in self._start and (end := cpu_seconds(pid)) is not None
            )
            out[name] = round(used * 1000.0 / max(events, 1), 3)
        out["total"] = round(sum(out.values()), 3)
        return out
