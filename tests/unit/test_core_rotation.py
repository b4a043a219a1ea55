"""The four steps x every strategy on the fakes: complete rotations, duplicate deliveries,
retries and bad inputs. No network: each case runs in milliseconds.

Worlds (tests/fakes/world.py): ``alternating`` and ``single`` on MariaDB and MySQL, ``dual``
(single user with MySQL dual passwords), ``same-user`` on MySQL (dual passwords by the admin)
and MariaDB (none).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from rotator.errors import (
    AccountLockedError,
    AdminPrivilegeError,
    RotationStateError,
    RotatorError,
    SecretMismatchError,
    UnsafeTargetError,
)
from rotator.ports import CURRENT, PENDING, PREVIOUS, SETTING, TESTED
from rotator.rotation import Step
from tests.fakes.world import FakeWorld, make_world

# (strategy, family): every strategy on each family it runs on.
WORLDS = [
    ("alternating", "mariadb"),
    ("alternating", "mysql"),
    ("single", "mariadb"),
    ("single", "mysql"),
    ("dual", "mysql"),
    ("same-user", "mysql"),
    ("same-user", "mariadb"),
]
IDS = [f"{strategy}-{family}" for strategy, family in WORLDS]
# Where the previous credentials keep working until the next rotation.
KEEPS_PREVIOUS = {("alternating", "mariadb"), ("alternating", "mysql"), ("dual", "mysql"), ("same-user", "mysql")}


def snapshot(world: FakeWorld) -> dict[Any, Any]:
    """Every account as the server holds it (passwords, state, profile)."""
    return {
        key: (a.password, a.secondary, a.plugin, a.locked, a.expired, a.profile)
        for key, a in world.server.accounts.items()
    }


def assert_rotated(world: FakeWorld, token: str, strategy: str, family: str, old: dict[str, Any]) -> None:
    """The outcome that matters: the new version is AWSCURRENT and logs in, the old one is
    AWSPREVIOUS and still logs in where the strategy promises it, nothing else holds a label."""
    stages = world.store.stages(world.app_arn)
    assert CURRENT in stages[token] and TESTED in stages[token]
    assert [version for version, labels in stages.items() if PREVIOUS in labels] != [token]
    current, previous = world.value(CURRENT), world.value(PREVIOUS)
    assert previous == old
    assert world.logs_in(current)
    assert world.logs_in(previous) is ((strategy, family) in KEEPS_PREVIOUS)
    if strategy == "alternating":
        assert current["username"] != previous["username"]
        app = world.server.account(current["username"]).profile
        twin = world.server.account(previous["username"]).profile
        assert app.privileges == twin.privileges
    else:
        assert current["username"] == previous["username"]


@pytest.mark.parametrize(("strategy", "family"), WORLDS, ids=IDS)
def test_two_rotations_move_the_labels_and_keep_the_promised_logins(strategy: str, family: str) -> None:
    """Two complete rotations: each makes its version current, the one before previous, and
    the new password the one that logs in; the previous one keeps working where promised."""
    world = make_world(strategy, family=family)
    for _ in range(2):
        old = world.value()
        token = world.begin()
        outcomes = [world.step(token, step).outcome for step in Step]
        assert outcomes[0] == "created" and outcomes[-1] == "promoted"
        assert_rotated(world, token, strategy, family, old)
    assert not [user for user, accepted in world.server.logins if not accepted], "a login was refused"


@pytest.mark.parametrize(("strategy", "family"), WORLDS, ids=IDS)
@pytest.mark.parametrize("step", list(Step), ids=str)
def test_a_duplicate_delivery_of_each_step_changes_nothing_more(strategy: str, family: str, step: Step) -> None:
    """Each step delivered twice in a row: the second finds its work done, the database and
    the labels end as after one delivery."""
    world = make_world(strategy, family=family)
    old = world.value()
    token = world.begin()
    for each in Step:
        first = world.step(token, each)
        if each is step:
            before = (snapshot(world), world.store.stages(world.app_arn))
            again = world.step(token, each)
            assert (snapshot(world), world.store.stages(world.app_arn)) == before or step is Step.SET
            if step is Step.CREATE:
                assert again.outcome == "pending-exists"
            elif step is Step.TEST:
                assert again.outcome == "already-tested"
            elif step is Step.FINISH:
                assert again.outcome == "already-current"
            else:
                # setSecret again: the pending password already works; the twin is synced again (no
                # change); the admin without dual passwords sets the same password again.
                expected = {"alternating": "twin-synced", "same-user": first.outcome}.get(
                    strategy, "password-already-set"
                )
                if (strategy, family) == ("same-user", "mysql"):
                    expected = "password-already-set"  # the admin's change is marked with the version
                assert again.outcome == expected, (first.outcome, again.outcome)
    assert_rotated(world, token, strategy, family, old)


@pytest.mark.parametrize(("strategy", "family"), WORLDS, ids=IDS)
def test_the_whole_rotation_delivered_again_after_it_finished_does_nothing(strategy: str, family: str) -> None:
    """Secrets Manager retries with the same token after finishSecret answered: every step is "already-current"."""
    world = make_world(strategy, family=family)
    token = world.begin()
    for step in Step:
        world.step(token, step)
    before = snapshot(world)
    assert [world.step(token, step).outcome for step in Step] == ["already-current"] * 4
    assert snapshot(world) == before


@pytest.mark.parametrize(("strategy", "family"), WORLDS, ids=IDS)
def test_finish_refuses_an_untested_version_and_changes_nothing(strategy: str, family: str) -> None:
    """finishSecret before testSecret passed: typed error, AWSCURRENT stays where it was."""
    world = make_world(strategy, family=family)
    token = world.begin()
    world.step(token, Step.CREATE)
    world.step(token, Step.SET)
    labels = world.store.stages(world.app_arn)
    with pytest.raises(RotationStateError, match="has not passed testSecret"):
        world.step(token, Step.FINISH)
    assert world.store.stages(world.app_arn) == labels


def test_a_step_for_a_token_that_is_not_pending_is_refused() -> None:
    """A token that is not AWSPENDING (a stale or forged invocation): typed error, nothing read or changed."""
    world = make_world("alternating")
    world.begin()
    before = snapshot(world)
    with pytest.raises(RotationStateError, match="not a version of this secret"):
        world.step("not-a-version", Step.SET)
    assert snapshot(world) == before


def test_rotation_off_is_refused() -> None:
    """A secret whose rotation is off: every step refuses."""
    world = make_world("single")
    token = world.begin()
    world.store._secrets[world.app_arn].rotation_enabled = False
    with pytest.raises(RotationStateError, match="rotation is not enabled"):
        world.step(token, Step.CREATE)


def test_a_pending_value_that_changes_the_host_is_refused_before_any_login() -> None:
    """A planted pending value pointing elsewhere: SecretMismatchError, no login made, nothing changed."""
    world = make_world("single")
    token = world.begin()
    planted = {**world.value(), "host": "attacker.example", "password": "planted-password-123"}
    world.store.put_pending(world.app_arn, token, json.dumps(planted), None)
    before = snapshot(world)
    with pytest.raises(SecretMismatchError, match="host"):
        world.step(token, Step.SET)
    assert snapshot(world) == before and world.server.logins == []


def test_an_admin_without_grant_option_is_refused_before_the_twin_exists() -> None:
    """Alternating users, admin lacks the grants: AdminPrivilegeError naming them, no twin created."""
    world = make_world("alternating")
    admin = world.server.account("admin")
    admin.profile = admin.profile._replace(
        privileges=frozenset(p for p in admin.profile.privileges if p.privilege != "GRANT OPTION")
    )
    token = world.begin()
    world.step(token, Step.CREATE)
    before = snapshot(world)
    with pytest.raises(AdminPrivilegeError, match="cannot grant"):
        world.step(token, Step.SET)
    assert snapshot(world) == before
    assert world.server.hosts("app_clone") == []


def test_a_twin_that_is_the_admin_is_refused_at_create() -> None:
    """The twin of 'admin_clone' would be 'admin': UnsafeTargetError before anything is written."""
    world = make_world("alternating", app_user="admin_clone")
    token = world.begin()
    with pytest.raises(UnsafeTargetError, match="admin secret's own user"):
        world.step(token, Step.CREATE)
    assert world.store.stages(world.app_arn)[token] == [PENDING]
    assert world.store.get_version(world.app_arn, token, PENDING) is None


def test_a_twin_changed_behind_rotators_back_is_brought_back_in_line() -> None:
    """A grant given to the twin directly is revoked by the next setSecret, and testSecret passes."""
    from rotator.accounts import Privilege

    world = make_world("alternating")
    world.rotate()
    twin = world.value(PREVIOUS)["username"]
    world.server.grant(twin, Privilege("DROP", "appdb"))
    world.rotate()
    assert Privilege("DROP", "appdb") not in world.server.account(twin).profile.privileges


@pytest.mark.parametrize("family", ["mariadb", "mysql"])
def test_a_locked_single_user_is_not_guessed_at(family: str) -> None:
    """An account locked by someone: setSecret fails with AccountLockedError after one login,
    tries no other password, and leaves ROTATOR_SETTING where it was."""
    world = make_world("single", family=family)
    token = world.begin()
    world.step(token, Step.CREATE)
    world.server.account("app").locked = True
    with pytest.raises(AccountLockedError):
        world.step(token, Step.SET)
    assert len(world.server.logins) == 1
    assert SETTING not in world.store.stages(world.app_arn).get(token, [])


def test_errors_name_the_secret_and_never_a_password(capsys: pytest.CaptureFixture[str]) -> None:
    """A failing step's error and every log line of a run hold identifiers only."""
    world = make_world("alternating")
    world.rotate()
    token = world.begin()
    world.step(token, Step.CREATE)
    world.server.account("admin").password = "changed-behind-the-secret-0001"
    with pytest.raises(RotatorError) as failed:
        world.step(token, Step.SET)
    assert world.app_arn in str(failed.value)
    text = capsys.readouterr().out + str(failed.value)
    assert text
    for password in world.passwords():
        assert password not in text
