import math

import pytest
from feast.protos.feast.types.Value_pb2 import Value

from features.compute import FEATURE_FIELDS
from features.writers.wire import double_value, feature_serializers, int64_value, string_value, timestamp_value


@pytest.mark.parametrize("x", [0, 1, 127, 128, 300, 4095, 4096, 2**31, 2**63 - 1, -1, -128, -(2**63)])
def test_int64_matches_protobuf(x):
    assert int64_value(x) == Value(int64_val=x).SerializeToString()


@pytest.mark.parametrize("x", [2**63, -(2**63) - 1])
def test_int64_out_of_range_is_refused_as_protobuf_refuses_it(x):
    with pytest.raises(ValueError):
        Value(int64_val=x)
    with pytest.raises(ValueError, match="int64 range"):
        int64_value(x)


@pytest.mark.parametrize("x", [2.7, -0.5, "3"])
def test_non_integers_are_refused_not_truncated(x):
    with pytest.raises(ValueError, match="not an integer"):
        int64_value(x)


@pytest.mark.parametrize("x", [0.0, -0.0, 1.5, -273.15, 1e-300, 1e300, math.inf, -math.inf])
def test_double_matches_protobuf(x):
    assert double_value(x) == Value(double_val=x).SerializeToString()


def test_double_nan_round_trips():
    assert math.isnan(Value.FromString(double_value(math.nan)).double_val)


@pytest.mark.parametrize("x", ["", "dr5ru7", "é" * 70, "x" * 20000])
def test_string_matches_protobuf(x):
    assert string_value(x) == Value(string_val=x).SerializeToString()


def test_every_feature_has_a_serializer_of_its_type():
    serializers = feature_serializers()
    assert set(serializers) == {name for name, _ in FEATURE_FIELDS}
    for name, typ in FEATURE_FIELDS:
        decoded = Value.FromString(serializers[name](typ(3)))
        assert decoded.WhichOneof("val") == {int: "int64_val", float: "double_val", str: "string_val"}[typ]


def test_timestamp_matches_protobuf():
    import random
    from datetime import UTC, datetime

    from google.protobuf.timestamp_pb2 import Timestamp

    rng = random.Random(0)
    # Whole seconds, sub-microsecond fractions that datetime rounds (up into the next second too), 2012 and 2100.
    times = [0.0, 1e-7, 0.9999995, 1.5, 1333324800.0, 1333324800.0000005, 4102444800.123456]
    times += [rng.uniform(0, 4.2e9) for _ in range(5000)]
    times += [rng.randrange(4 * 10**9) + rng.randrange(10**6) / 1e6 for _ in range(5000)]  # whole microseconds
    for ts in times:
        expected = Timestamp()
        expected.FromDatetime(datetime.fromtimestamp(ts, UTC))
        assert timestamp_value(ts) == expected.SerializeToString(), ts
