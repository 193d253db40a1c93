from tests.trainer.model.conftest import _one_thread, fitted, habits  # noqa: F401 (shared fixtures)
