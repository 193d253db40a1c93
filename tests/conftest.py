"""Shared fixtures. Integration tests (`@pytest.mark.integration`) run against the real local stack.

`make test` starts the stack before pytest. Run alone, integration tests are skipped when the stack is
down, except under `make test` (env CLICKCAST_REQUIRE_STACK) or CI (env CI), where a stack that is not healthy
when the first integration test starts fails them: a run that skips every integration test must not look green.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import settings as hypothesis_settings

# Generated-input tests (Hypothesis) draw new examples on every run of pytest alone; under `make test` or CI they
# replay a fixed sequence, so that a test run judges the change, not the luck of the draw.
hypothesis_settings.register_profile("fixed", derandomize=True)
if os.environ.get("CLICKCAST_REQUIRE_STACK") or os.environ.get("CI"):
    hypothesis_settings.load_profile("fixed")

# Modules that stop and restart the stack: run them after every other test so no test loses its stack.
RESTARTING_MODULES = {"test_stack_restart.py"}


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: Path(str(item.path)).name in RESTARTING_MODULES)


@pytest.fixture(scope="session")
def stack():
    """The settings of a running, healthy stack (Kafka, Redis, Triton)."""
    from deploy.stack.stack import status
    from streams.settings import get_settings

    settings = get_settings()
    unhealthy = [s.line() for s in status(settings) if s.state != "healthy"]
    if unhealthy:
        message = "the local stack is not healthy (start it with `clickcast stack up` or `make test`):\n" + "\n".join(
            unhealthy
        )
        # `make test` starts the stack, so there a stack that is not healthy is a failure, never a green run of skips.
        if os.environ.get("CLICKCAST_REQUIRE_STACK") or os.environ.get("CI"):
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    return settings


@pytest.fixture(autouse=True)
def _integration_needs_stack(request: pytest.FixtureRequest) -> None:
    if request.node.get_closest_marker("integration") is not None:
        request.getfixturevalue("stack")


@pytest.fixture
def renamed_checkins(tmp_path: Path) -> tuple[Path, str]:
    """The sample's first 300 check-ins in a CSV with other column names, and the `--columns` mapping that reads it
    (the sample is in time order, so these are also the first 300 events in time)."""
    import pandas as pd

    from streams.commands import SAMPLE_DATA

    path = tmp_path / "checkins.csv"
    names = {"user_id": "uid", "poi_id": "venue", "utc_time_approx": "when", "latitude": "lat", "longitude": "lng"}
    pd.read_csv(SAMPLE_DATA, nrows=300).rename(columns=names).to_csv(path, index=False)
    return path, "user_id=uid,item_id=venue,time=when,latitude=lat,longitude=lng"
