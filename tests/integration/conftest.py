import shutil
import time

import pytest

from deploy.stack.triton import model_versions
from streams.settings import get_settings


@pytest.fixture(scope="session", autouse=True)
def _remove_versions_the_tests_export():
    """The rollout and parity tests export versions into the stack's model repository (~11 MB each); remove them
    after the session, so repeated runs do not fill a checkout. Triton's poll then serves the newest one left."""
    settings = get_settings()
    repository, name = settings.model_repository, settings.triton.model_name
    before = set(model_versions(repository, name))
    yield
    added = set(model_versions(repository, name)) - before
    for version in added:
        shutil.rmtree(repository / name / str(version), ignore_errors=True)
    if added and before:
        _wait_served(settings, name, max(before))


def _wait_served(settings, name: str, version: int, timeout_s: float = 120.0) -> None:
    """Until Triton's poll serves `version` again: a session started right after this one must not meet a
    version that is gone from the repository still answering."""
    import tritonclient.http as httpclient

    client = httpclient.InferenceServerClient(settings.triton.http_url)
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                if client.is_model_ready(name, str(version)):
                    return
            except Exception:  # the stack went down meanwhile: nothing left to wait for
                return
            time.sleep(1.0)
    finally:
        client.close()
