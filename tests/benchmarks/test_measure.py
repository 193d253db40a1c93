import time

import pytest

from tests.benchmarks.measure import _publish
from tests.benchmarks.workload import Payload


class SlowProducer:
    """Takes 20 ms a send: a sender that falls behind a 100 events/s schedule."""

    def send_raw(self, key, value):
        time.sleep(0.02)

    def flush(self):
        pass


def test_a_late_sender_still_times_each_paced_event_from_its_slot_in_the_schedule():
    payloads = [Payload(f"e{i}", b"k", b"v") for i in range(10)]
    published = {}
    _publish(SlowProducer(), payloads, 100.0, published)
    due = [published[p.event_id][0] for p in payloads]
    sent = [published[p.event_id][1] for p in payloads]
    assert [d - due[0] for d in due] == pytest.approx([i / 100.0 for i in range(10)])
    assert sent[-1] - due[-1] > 0.05  # it went out ~90 ms after its slot, and is timed from the slot


def test_at_full_speed_an_event_is_due_when_it_is_sent():
    published = {}
    _publish(SlowProducer(), [Payload("e0", b"k", b"v")], None, published)
    due, sent = published["e0"]
    assert due == sent
