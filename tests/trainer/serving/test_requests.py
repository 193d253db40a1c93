import numpy as np
import pytest

from trainer.data import PAD
from trainer.serving.requests import request_histories


def raw(model, rows: list[list[str]]):
    """Triton's inputs for histories of known item ids: joined ids, and right-aligned times / coordinates."""
    length = model.cfg.max_len
    joined = np.array([[" ".join(r).encode()] for r in rows], dtype=object)
    ts, lat, lon = (np.zeros((len(rows), length)) for _ in range(3))
    for i, r in enumerate(rows):
        if r:
            ts[i, -len(r) :] = 1.33e9 + 60.0 * np.arange(len(r))
            lat[i, -len(r) :], lon[i, -len(r) :] = 40.7, -74.0
    return joined, ts, lat.astype(np.float32), lon.astype(np.float32)


def test_a_valid_request_becomes_right_aligned_histories(fitted):
    model = fitted.model
    known = model.item_ids[2:5]
    h = request_histories(model, *raw(model, [known, []]))
    assert h.items.shape == (2, model.cfg.max_len)
    assert [model.item_ids[i] for i in h.items[0, -3:]] == known and (h.items[1] == PAD).all()


def test_padding_columns_are_zeroed_whatever_the_client_sent(fitted):
    model = fitted.model
    joined, ts, lat, lon = raw(model, [model.item_ids[2:4]])
    ts[0, 0], lat[0, 0], lon[0, 0] = np.nan, np.nan, np.inf
    h = request_histories(model, joined, ts, lat, lon)
    assert h.ts[0, 0] == 0 and h.lat[0, 0] == 0 and h.lon[0, 0] == 0


@pytest.mark.parametrize(
    ("spoil", "message"),
    [
        (lambda j, t, la, lo: la.__setitem__((0, -1), np.nan), "coordinates"),
        (lambda j, t, la, lo: lo.__setitem__((0, -1), 181.0), "coordinates"),
        (lambda j, t, la, lo: t.__setitem__((0, -1), np.inf), "timestamp"),
        (lambda j, t, la, lo: j.__setitem__((0, 0), b"\xff\xfe"), "utf-8"),
    ],
)
def test_a_malformed_request_is_a_value_error_saying_why(fitted, spoil, message):
    model = fitted.model
    arrays = raw(model, [model.item_ids[2:4]])
    spoil(*arrays)
    with pytest.raises(ValueError, match=message):
        request_histories(model, *arrays)


def test_a_history_longer_than_the_model_window_is_refused(fitted):
    model = fitted.model
    joined, ts, lat, lon = raw(model, [[model.item_ids[2]] * model.cfg.max_len])
    joined[0, 0] = joined[0, 0] + b" " + model.item_ids[3].encode()
    with pytest.raises(ValueError, match="does not fit"):
        request_histories(model, joined, ts, lat, lon)
