"""A confluent-kafka AdminClient for the stack's own probes and topic set-up.

librdkafka logs connection retries and shutdown notices straight to stderr; failures that matter
surface as exceptions from the calls, so its log goes to a silent logger instead.
"""

from __future__ import annotations

import logging

_QUIET = logging.getLogger(__name__)
_QUIET.addHandler(logging.NullHandler())
_QUIET.propagate = False


def admin_client(bootstrap: str):
    from confluent_kafka.admin import AdminClient

    return AdminClient({"bootstrap.servers": bootstrap, "logger": _QUIET})
