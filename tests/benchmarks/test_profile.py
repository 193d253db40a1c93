from __future__ import annotations

from tests.benchmarks.profile import sample_count, top_functions

RAW = """\
<module> (clickcast:6);main (streams/cli.py:40);process (streams/processor.py:120) 6
<module> (clickcast:6);main (streams/cli.py:40);write (/x/site-packages/feast/sqlite.py:10) 3
<module> (clickcast:6);main (streams/cli.py:41);process (streams/processor.py:130);process (streams/processor.py:99) 1
"""


def test_inclusive_shares_count_a_function_once_per_stack():
    top = {row["function"]: row["pct"] for row in top_functions(RAW)}
    assert "main (streams/cli.py)" not in top  # entry points are under every sample
    assert top["process (streams/processor.py)"] == 70.0  # recursion counted once
    assert top["write (feast/sqlite.py)"] == 30.0
    assert sample_count(RAW) == 10


def test_empty_profile():
    assert top_functions("") == [] and sample_count("") == 0
