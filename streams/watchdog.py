"""A last resort for a worker that must stop: exit the process if its clean stop has not finished in time.

faust's stop waits for every click a stream has started to be acknowledged; the clicks of a failed batch never are
(acknowledging them would commit past them), and when the stop begins before faust marks its consumer as stopping,
that wait never ends. Exiting hard loses nothing: unacknowledged clicks are handed out again, and a click already
in the table is answered again but not counted twice (features.history).
"""

from __future__ import annotations

import faulthandler
import logging
import os
import threading

log = logging.getLogger(__name__)

EXIT_CODE = 70  # EX_SOFTWARE


def exit_unless_stopped(grace_s: float, why: str) -> threading.Timer:
    """Start a daemon timer that ends the process after `grace_s`, unless the process has ended first."""

    def exit_now() -> None:
        log.critical("%s: no clean stop within %.0f s; exiting (stacks of every thread follow)", why, grace_s)
        faulthandler.dump_traceback(all_threads=True)  # to stderr: where the stop hung
        logging.shutdown()
        os._exit(EXIT_CODE)

    timer = threading.Timer(grace_s, exit_now)
    timer.daemon = True
    timer.start()
    return timer
