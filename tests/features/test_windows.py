import pytest

from features.windows import (
    DEFAULT_WINDOWS,
    SlidingWindow,
    count_in_window,
    distinct_items_in_window,
    window_bounds,
)

HOUR = SlidingWindow("1h", 3600.0)


def test_default_windows():
    assert [(w.name, w.size_s) for w in DEFAULT_WINDOWS] == [("10m", 600.0), ("1h", 3600.0), ("24h", 86400.0)]


@pytest.mark.parametrize("size", [0, -1.0, float("inf"), float("nan")])
def test_window_rejects_bad_sizes(size):
    with pytest.raises(ValueError):
        SlidingWindow("w", size)


@pytest.mark.parametrize("size", ["60", None, True])
def test_window_rejects_non_numbers(size):
    with pytest.raises(TypeError):
        SlidingWindow("w", size)


@pytest.mark.parametrize("name", ["", "1 h", "1H", "_x", "a" * 17, "x-y", 5])
def test_window_rejects_bad_names(name):
    with pytest.raises(ValueError):
        SlidingWindow(name, 60.0)


def test_window_is_frozen():
    with pytest.raises(AttributeError):
        HOUR.size_s = 1.0


def test_edges_lower_open_upper_closed():
    ts = [1000.0, 4600.0, 5000.0, 8200.0]
    # As of 4600: window is (1000, 4600]; the event exactly at T - size is out, the one at T is in.
    assert count_in_window(ts, 4600.0, HOUR) == 1
    assert window_bounds(ts, 4600.0, HOUR) == (1, 2)
    # A hair later the 4600 event is still in; a hair earlier than T the event at T is not yet.
    assert count_in_window(ts, 4599.0, HOUR) == 1  # (999, 4599] holds only 1000
    assert count_in_window(ts, 8200.0, HOUR) == 2  # (4600, 8200]: 5000 and 8200
    assert count_in_window(ts, 8199.0, HOUR) == 2  # (4599, 8199]: 4600 and 5000


def test_events_after_as_of_are_ignored():
    ts = [10.0, 20.0, 30.0]
    assert count_in_window(ts, 20.0, HOUR) == 2
    assert count_in_window(ts, 5.0, HOUR) == 0


def test_distinct_items():
    ts = [0.0, 100.0, 200.0, 300.0, 4000.0]
    items = ["a", "b", "a", "c", "a"]
    assert distinct_items_in_window(ts, items, 300.0, HOUR) == 3
    assert distinct_items_in_window(ts, items, 4000.0, HOUR) == 1  # (400, 4000] holds only "a"
    assert distinct_items_in_window(ts, items, 3700.0, HOUR) == 2  # (100, 3700]: "a" at 200, "c" at 300


def test_distinct_items_requires_parallel_lists():
    with pytest.raises(ValueError):
        distinct_items_in_window([1.0, 2.0], ["a"], 2.0, HOUR)


def test_ties_at_the_edge_all_excluded_or_all_included():
    ts = [0.0, 0.0, 3600.0, 3600.0]
    assert count_in_window(ts, 3600.0, HOUR) == 2
    assert count_in_window(ts, 3599.0, HOUR) == 2
