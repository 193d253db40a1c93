import os
import time

from tests.benchmarks.cpu import CpuMeter, cpu_seconds


def _spin(seconds: float) -> None:
    end = time.process_time() + seconds
    while time.process_time() < end:
        pass


def test_cpu_seconds_grows_with_work_and_is_none_for_a_missing_process():
    before = cpu_seconds(os.getpid())
    _spin(0.2)
    assert cpu_seconds(os.getpid()) - before >= 0.15
    assert cpu_seconds(2**22 + 12345) is None


def test_meter_reports_milliseconds_per_event_per_group():
    meter = CpuMeter({"me": [os.getpid()], "gone": [2**22 + 12345]})
    meter.start()
    _spin(0.3)
    figures = meter.stop(events=100)
    assert 2.5 <= figures["me"] <= 4.5  # 0.3 s over 100 events, plus the loop's own overhead
    assert figures["gone"] == 0.0
    assert figures["total"] == figures["me"]
