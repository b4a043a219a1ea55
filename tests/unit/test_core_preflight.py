"""The strategies' pre-flight on the fakes, used twice: setSecret raises the refusal of the
first failing finding before anything changes and asks nothing after it; ``rotator check``
reports every finding, the same ones. And the engine registry: a secret of an engine no
backend serves is refused by every step, before any change and before any connection."""

from __future__ import annotations

import json

import pytest

from rotator import preflight
from rotator.accounts import GRANT_OPTION, Privilege
from rotator.errors import RotationStateError, RotatorError, UnsupportedEngineError
from rotator.findings import Finding, Level
from rotator.ports import CURRENT
from rotator.rotation import Step
from rotator.secret import DatabaseSecret
from tests.fakes.world import FakeWorld, make_world
from tests.unit.test_core_rotation import snapshot


def three_failures(world: FakeWorld) -> None:
    """An admin that may read mysql.user only (not the definitions), nor grant (no GRANT OPTION,
    no SELECT), and a user whose plugin cannot be copied: three failing questions of the alternating pre-flight."""
    admin = world.server.account("admin")
    kept = {p for p in admin.profile.privileges if p.privilege not in ("SELECT", GRANT_OPTION)}
    admin.profile = admin.profile._replace(privileges=frozenset({*kept, Privilege("SELECT", "mysql", "user")}))
    app = world.server.account("app")
    app.plugin = "auth_socket"
    app.profile = app.profile._replace(plugin="auth_socket")


def the_preflight(world: FakeWorld) -> list[Finding]:
    """Every finding of the alternating pre-flight, asked directly of a fake admin session."""
    current = DatabaseSecret.parse(world.app_arn, json.dumps(world.value()))
    admin = DatabaseSecret.parse(world.admin_arn or "", json.dumps(world.store.value(world.admin_arn or "")))
    with world.database.admin(admin, current) as session:
        hosts = session.account_hosts(current.username)
        return list(preflight.alternating_users(session, current, current.twin_username, hosts))


def failing(findings: list[Finding]) -> list[tuple[str, str]]:
    return [(f.check, f.message) for f in findings if f.level is Level.FAIL]


def test_set_secret_stops_at_the_first_failure_and_check_reports_them_all() -> None:
    """Three things wrong: setSecret raises the first failing finding's refusal (its message),
    changes nothing and asks no later question; ``rotator check`` reports all three, with the
    same messages as the pre-flight."""
    world = make_world("alternating", family="mysql")
    three_failures(world)
    found = the_preflight(world)
    failures = failing(found)
    assert {check for check, _ in failures} >= {"admin.read-definitions", "app.copy", "admin.grant"}
    first = next(f for f in found if f.level is Level.FAIL)
    assert isinstance(first.refusal, RotatorError)

    reported = world.check()
    assert [f for f in failing(reported.findings) if f[0] in {c for c, _ in failures}] == failures

    token = world.begin()
    world.step(token, Step.CREATE)
    before, labels = snapshot(world), world.store.stages(world.app_arn)
    start = len(world.faults.calls)
    with pytest.raises(type(first.refusal)) as refused:
        world.step(token, Step.SET)
    assert refused.value.problem == first.refusal.problem
    assert (snapshot(world), world.store.stages(world.app_arn)) == (before, labels)
    asked = world.faults.calls[start:]
    assert "AdminSession.sync_twin" not in asked
    assert "AdminSession.copy_problems" not in asked, "a question after the first failure was asked"


def test_a_clean_preflight_lets_set_secret_through_and_check_says_ok() -> None:
    """Nothing wrong: no failing finding in the pre-flight nor in check; setSecret syncs the twin."""
    world = make_world("alternating", family="mariadb")
    assert failing(the_preflight(world)) == []
    assert failing(world.check().findings) == []
    token = world.begin()
    world.step(token, Step.CREATE)
    assert world.step(token, Step.SET).outcome == "twin-synced"


@pytest.mark.parametrize("strategy", ["alternating", "single", "same-user"])
def test_an_engine_without_a_backend_is_refused_by_every_step_before_any_change(strategy: str) -> None:
    """``"engine": "postgres"`` on a rotator whose only backend is the MySQL family's: createSecret,
    setSecret and testSecret raise UnsupportedEngineError naming the secret, with no pending value
    written, no label moved, no account touched and no connection made; finishSecret refuses the
    untested version. check reports it as secret.engine."""
    world = make_world(strategy)
    value = {**world.value(), "engine": "postgres"}
    world.store.put_value(world.app_arn, value, [CURRENT])
    token = world.begin()
    before, labels = snapshot(world), world.store.stages(world.app_arn)
    start = len(world.faults.calls)
    for step in (Step.CREATE, Step.SET, Step.TEST):
        with pytest.raises(UnsupportedEngineError) as refused:
            world.step(token, step)
        assert refused.value.secret_id == world.app_arn
        assert "postgres" in refused.value.problem
    with pytest.raises(RotationStateError):
        world.step(token, Step.FINISH)
    assert (snapshot(world), world.store.stages(world.app_arn)) == (before, labels)
    assert world.store.get_version(world.app_arn, token, None) is None
    database_calls = {call for call in world.faults.calls[start:] if not call.startswith("SecretStore.")}
    assert database_calls == {"Database.supports"}
    assert world.server.logins == []
    assert [f.level for f in world.check().findings if f.check == "secret.engine"] == [Level.FAIL]
