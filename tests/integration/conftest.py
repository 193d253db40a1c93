import shutil

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
    for version in set(model_versions(repository, name)) - before:
        shutil.rmtree(repository / name / str(version), ignore_errors=True)
