"""Waiting for workers counts the workers just started, not a killed one the group still lists."""

from __future__ import annotations

import os
import shutil
import signal
import time
import uuid

import pytest
from confluent_kafka.admin import AdminClient

from streams.kafka_config import confluent_config, worker_client_id
from streams.settings import get_settings
from streams.workers import group_members, start_workers, stop_workers, wait_ready
from tests.benchmarks.processes import delete_topics, remove_group

pytestmark = pytest.mark.integration


def test_ready_means_the_new_worker_holds_partitions_while_a_killed_one_is_still_a_member(stack):
    app_id = f"ready-{uuid.uuid4().hex[:8]}"  # a group of its own
    settings = get_settings().updated(stream={"app_id": app_id})
    env = {"CLICKCAST_STREAM__APP_ID": app_id}
    admin = AdminClient(confluent_config(settings.kafka))
    killed = start_workers(settings, 1, env=env)
    try:
        wait_ready(settings, killed)
        killed_id = worker_client_id(killed[0].pid())
        os.kill(killed[0].pid(), signal.SIGKILL)  # no leave-group: it stays a member until its session times out
        deadline = time.monotonic() + 30
        while killed[0].pid() is not None:
            assert time.monotonic() < deadline, "the killed worker did not exit"
            time.sleep(0.1)
        # The case this test is about: the group still lists the killed worker with partitions as the new one starts.
        assert dict(group_members(admin, app_id)).get(killed_id, 0) > 0
        workers = start_workers(settings, 1, env=env)
        try:
            wait_ready(settings, workers, timeout_s=180)
            members = dict(group_members(admin, app_id))
            assert members.get(worker_client_id(workers[0].pid()), 0) > 0, members
        finally:
            stop_workers(workers)
    finally:
        stop_workers(killed)
        remove_group(settings, app_id)
        delete_topics(settings, app_id)  # faust's changelog and assignor topics
        tables = settings.run_dir / "workers" / "worker-0-data"
        shutil.rmtree(tables / app_id, ignore_errors=True)
        (tables / f"{app_id}.lock").unlink(missing_ok=True)
