"""Progress lines with elapsed time and ETA for long trainer steps (log-friendly, unlike redrawn bars)."""

from __future__ import annotations

import sys
import time
from typing import TextIO

from trainer.recommender import Progress


def _clock(seconds: float) -> str:
    seconds = max(int(seconds), 0)
    return f"{seconds // 60}m{seconds % 60:02d}s"


class ProgressLog:
    """`step(name)` gives a `progress(message, fraction)` callback for one step. A line is printed when the
    message changes (e.g. a new epoch) and otherwise at most every `interval_s` seconds, so steps shorter than
    that stay silent."""

    def __init__(self, stream: TextIO | None = None, interval_s: float = 15.0) -> None:
        self.stream = stream or sys.stderr
        self.interval_s = interval_s
        self.started = time.perf_counter()

    def line(self, text: str) -> None:
        print(f"[{_clock(time.perf_counter() - self.started)}] {text}", file=self.stream, flush=True)

    def step(self, name: str = "") -> Progress:
        step_start = time.perf_counter()
        last = {"message": "", "at": step_start}

        def report(message: str, fraction: float) -> None:
            now = time.perf_counter()
            changed = bool(last["message"]) and message != last["message"]
            if not changed and now - last["at"] < self.interval_s:
                if not last["message"]:
                    last["message"] = message
                return
            last.update(message=message, at=now)
            elapsed = now - step_start
            eta = f" ETA {_clock(elapsed * (1 - fraction) / fraction)}" if 0 < fraction < 1 else ""
            prefix = f"{name}: " if name else ""
            self.line(f"{prefix}{message} {100 * min(fraction, 1.0):.0f}%{eta}")

        return report
