import pytest

from features.windows import DEFAULT_WINDOWS, SlidingWindow

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
