"""The watchdog ends a process whose clean stop hangs, and leaves alone one that ends first."""

import subprocess
import sys

from streams.watchdog import EXIT_CODE

START = "from streams.watchdog import exit_unless_stopped; exit_unless_stopped({grace}, 'test')"
HANGING = START.format(grace=0.2) + "; import time; time.sleep(30)"
ENDING = START.format(grace=60.0)


def test_a_hanging_stop_ends_with_the_exit_code():
    done = subprocess.run([sys.executable, "-c", HANGING], capture_output=True, timeout=20)
    assert done.returncode == EXIT_CODE


def test_a_process_that_ends_first_is_not_held_by_the_timer():
    # Held by the timer, it would run for the 60 s grace, past the timeout (the margin covers a loaded machine).
    done = subprocess.run([sys.executable, "-c", ENDING], capture_output=True, timeout=20)
    assert done.returncode == 0
