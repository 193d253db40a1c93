"""Bringing a service up where its ports are already taken says which settings move it."""

import pytest

from deploy.stack.process import ServiceError
from deploy.stack.stack import PORT_SETTINGS, _bring_up


class Taken:
    """A service none of ours runs, whose port something else answers on."""

    port = 16379

    def __init__(self, name: str) -> None:
        self.name = name

    def pid(self) -> None:
        return None

    def stop(self) -> None:
        pass

    def healthy(self) -> bool:
        return True


@pytest.mark.parametrize("name", sorted(PORT_SETTINGS))
def test_a_taken_port_names_the_settings_that_move_the_service(name):
    with pytest.raises(ServiceError, match=f"^{name}: port 16379 answers") as refused:
        _bring_up(Taken(name))
    assert PORT_SETTINGS[name] in str(refused.value) and "CLICKCAST_" in str(refused.value)
