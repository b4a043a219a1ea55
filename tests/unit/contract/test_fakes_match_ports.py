"""The fakes implement the ports of rotator.ports as they stand: every method of each
protocol, with the same parameters (names, kinds, defaults). A method added to or removed
from a port fails here before any unit test runs on a fake that lacks (or keeps) it; the
contract tests then prove the fakes answer as the adapters do."""

from __future__ import annotations

import inspect

import pytest

from rotator import ports
from tests.fakes.database import FakeAdminSession, FakeDatabase, FakeOwnAccount
from tests.fakes.store import FakeSecretStore

PAIRS = [
    (ports.SecretStore, FakeSecretStore),
    (ports.OperatorStore, FakeSecretStore),
    (ports.Database, FakeDatabase),
    (ports.AdminSession, FakeAdminSession),
    (ports.OwnAccountSession, FakeOwnAccount),
]


def methods(protocol: type) -> dict[str, inspect.Signature]:
    return {
        name: inspect.signature(member)
        for klass in protocol.__mro__
        if klass.__module__ == ports.__name__
        for name, member in vars(klass).items()
        if callable(member) and not name.startswith("_")
    }


def parameters(signature: inspect.Signature) -> list[tuple[str, object, object]]:
    return [(p.name, p.kind, p.default) for p in signature.parameters.values()]


@pytest.mark.parametrize(("protocol", "fake"), PAIRS, ids=lambda item: item.__name__)
def test_each_fake_has_every_method_of_its_port_with_the_same_parameters(protocol: type, fake: type) -> None:
    """Every port method exists on the fake, with the port's parameters."""
    wanted = methods(protocol)
    assert wanted, f"no methods read from {protocol.__name__}"
    for name, signature in wanted.items():
        assert hasattr(fake, name), f"{fake.__name__} lacks {protocol.__name__}.{name}"
        assert parameters(inspect.signature(getattr(fake, name))) == parameters(signature), name


def test_no_fake_keeps_a_method_its_port_dropped() -> None:
    """The admin session's port calls are the port's: a method the port no longer has
    (verify_twin) is not kept on the fake, where a test could still lean on it."""
    port_names = set(methods(ports.AdminSession))
    fake_names = {name for name, member in vars(FakeAdminSession).items() if callable(member)}
    assert {name for name in fake_names if not name.startswith("_")} - port_names == set()
