"""A small run of `clickcast bench expiry`: one pass in the slices asked for, the idle tenth expired."""

from tests.benchmarks.expiry import run


def test_a_pass_takes_the_rounds_its_slices_need_and_expires_the_idle_users():
    said: list[str] = []
    result = run(users=40, events=3, slice_users=8, progress=said.append)
    assert result["rounds"] == 5  # 40 users, 8 a round
    assert result["expired"] == 4  # users 0, 10, 20 and 30
    assert 0 < result["round_ms"]["p50"] <= result["round_ms"]["max"]
    assert result["whole_table_ms"] > 0
    assert said[-1] == "one pass: 5 rounds, 4 users expired"
