"""Single-user rotation: no masterarn, the user changes its own password (every engine:
MariaDB, MySQL, PostgreSQL 15 and 18)."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest

from rotator.errors import DatabaseAuthError
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, stages
from tests.support.families import account_exists, set_password
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.every_engine


@pytest.fixture
def single(world_factory: Callable[..., World]) -> World:
    return world_factory(single_user=True)


@pytest.fixture
def changed(db: DatabaseServer) -> str:
    """setSecret's outcome for a user without dual passwords: on MySQL, which has them,
    a fallback (counted; see test_dual_passwords.py), on MariaDB the only way."""
    return "password-changed-without-dual" if db.family == "mysql" else "password-changed"


def test_single_user_rotation_changes_the_password_in_place(single: World, leak_check: LeakCheck, changed: str) -> None:
    """The same user gets a new password; the old one stops working once setSecret ran."""
    old = single.app_secret()
    results = single.rotate()
    assert [r["outcome"] for r in results] == ["created", changed, "login-ok", "promoted"]
    new = single.app_secret()
    assert new["username"] == old["username"] == "app"
    assert new["password"] != old["password"]
    assert single.can_use_grants(new)
    assert not single.logs_in(old)  # refused: the old password is gone
    assert not account_exists(single.server, "app_clone")
    leak_check.assert_clean(*single.all_passwords())


def test_single_user_setsecret_retry_after_password_change(single: World, changed: str) -> None:
    """setSecret delivered again after it changed the password finds the pending password already set."""
    assert single.invoke is not None
    token = begin_rotation(single.client, single.app_arn)
    single.invoke(event(single.app_arn, token, "createSecret"))
    assert single.invoke(event(single.app_arn, token, "setSecret"))["outcome"] == changed
    assert single.invoke(event(single.app_arn, token, "setSecret"))["outcome"] == "password-already-set"
    assert single.invoke(event(single.app_arn, token, "testSecret"))["outcome"] == "login-ok"


def test_single_user_falls_back_to_the_previous_password(single: World, changed: str) -> None:
    """When AWSCURRENT no longer logs in but AWSPREVIOUS does, the previous password authorises the change."""
    real = single.app_secret()
    # Someone put a value in AWSCURRENT without changing the database: the real
    # password now sits in AWSPREVIOUS.
    single.client.put_secret_value(SecretId=single.app_arn, SecretString=json.dumps({**real, "password": "not-it-1"}))
    results = single.rotate()
    assert [r["outcome"] for r in results] == ["created", changed, "login-ok", "promoted"]
    assert single.can_use_grants(single.app_secret())


def test_single_user_with_no_working_password_fails_without_change(single: World) -> None:
    """If neither the current nor the previous password works, setSecret fails and finishSecret never runs."""
    assert single.invoke is not None
    real = single.app_secret()
    set_password(single.server, "app", "changed-behind-our-back")
    token = begin_rotation(single.client, single.app_arn)
    single.invoke(event(single.app_arn, token, "createSecret"))
    with pytest.raises(DatabaseAuthError, match=r"user 'app' was refused .* each of the 2 passwords tried"):
        single.invoke(event(single.app_arn, token, "setSecret"))
    assert stages(single.client, single.app_arn)[token] == ["AWSPENDING"]
    assert single.app_secret() == real
