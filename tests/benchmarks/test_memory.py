import os

from tests.benchmarks.memory import memory_mb, resident_mb

GONE = 2**22 + 12345


def test_resident_memory_grows_with_what_a_process_holds_and_is_none_when_it_is_gone():
    now, peak = resident_mb(os.getpid())
    held = bytearray(64 * 1024 * 1024)
    held[::4096] = b"x" * len(held[::4096])  # touch every page, so it is resident
    grown, grown_peak = resident_mb(os.getpid())
    assert grown - now >= 60 and grown_peak >= grown >= 0 and grown_peak >= peak
    assert resident_mb(GONE) is None
    del held


def test_groups_sum_their_processes_and_keep_the_largest_peak():
    me = resident_mb(os.getpid())
    figures = memory_mb({"twice": [os.getpid(), os.getpid()], "gone": [GONE]})
    assert abs(figures["twice"]["resident"] - 2 * me[0]) < 5
    assert figures["twice"]["peak_process"] >= me[1] - 0.1
    assert figures["gone"] == {"resident": 0.0, "peak_process": 0.0}
