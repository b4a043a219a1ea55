"""Bad input: a typed error naming the secret, no change to the secret or the
database users, and no credential in any output."""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from rotator.errors import (
    AdminHostError,
    DatabaseAuthError,
    DatabaseTLSError,
    DatabaseUnreachableError,
    RotationStateError,
    RotatorError,
    SecretFormatError,
    SecretMismatchError,
    SecretStoreError,
)
from tests.integration.conftest import LeakCheck
from tests.support.aws import begin_rotation, event, stages
from tests.support.servers import free_port, make_pki
from tests.support.world import World, accounts_snapshot

# Engine-neutral: MariaDB, MySQL and PostgreSQL 15 (the core refuses these inputs alike on
# every version; 18 adds time to `make test`, not coverage).
pytestmark = pytest.mark.every_engine("postgresql15")


def secret_snapshot(world: World, arn: str) -> tuple[dict[str, list[str]], str]:
    current = world.client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"]
    labels = {k: v for k, v in stages(world.client, arn).items() if v != ["AWSPENDING"]}
    return labels, current


def run_until_failure(world: World, arn: str, token: str) -> RotatorError:
    assert world.invoke is not None
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        try:
            world.invoke(event(arn, token, step))
        except RotatorError as exc:
            return exc
    raise AssertionError("the rotation did not fail")


Case = Callable[[World, pytest.MonkeyPatch, Path], str]  # prepares the world, returns the secret to rotate


def _put_raw(world: World, text: str) -> str:
    """A second application secret holding ``text`` as it is."""
    arn = world.client.create_secret(Name=f"raw-{uuid.uuid4().hex[:8]}", SecretString=text)["ARN"]
    return str(arn)


def not_json(world: World, *_: Any) -> str:
    return _put_raw(world, '{"username": "app", "password": "' + world.app_secret()["password"] + '", oops')


def missing_host(world: World, *_: Any) -> str:
    value = world.app_secret()
    del value["host"]
    return _put_raw(world, json.dumps(value))


def unknown_engine(world: World, *_: Any) -> str:
    return _put_raw(world, json.dumps({**world.app_secret(), "engine": "oracle"}))


def masterarn_nowhere(world: World, *_: Any) -> str:
    missing = "arn:aws:secretsmanager:us-east-1:123456789012:secret:does-not-exist-AbCdEf"
    return _put_raw(world, json.dumps({**world.app_secret(), "masterarn": missing}))


def database_unreachable(world: World, *_: Any) -> str:
    return _put_raw(world, json.dumps({**world.app_secret(), "port": free_port()}))


def wrong_admin_password(world: World, *_: Any) -> str:
    admin = world.admin_secret()
    world.client.put_secret_value(
        SecretId=world.admin_arn, SecretString=json.dumps({**admin, "password": "wrong-pw-1"})
    )
    return world.app_arn


def untrusted_certificate(world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> str:
    other_ca = make_pki(tmp_path / "other-ca", common_name="someone else's CA")
    monkeypatch.setenv("ROTATOR_CA_BUNDLE", str(other_ca.ca_file))
    return world.app_arn


def tampered_pending_host(world: World, *_: Any) -> str:
    # A pending version written by someone else that points the logins elsewhere.
    token = begin_rotation(world.client, world.app_arn)
    world.client.put_secret_value(
        SecretId=world.app_arn,
        ClientRequestToken=token,
        SecretString=json.dumps({**world.app_secret(), "username": "app_clone", "host": "localhost"}),
        VersionStages=["AWSPENDING"],
    )
    return world.app_arn + "#" + token


def hostless_admin_unconfirmed(world: World, *_: Any) -> str:
    # An RDS-managed admin secret, and nothing confirms the application's host for it.
    admin = world.admin_secret()
    world.client.put_secret_value(
        SecretId=world.admin_arn,
        SecretString=json.dumps({"username": admin["username"], "password": admin["password"]}),
    )
    return world.app_arn


def admin_host_contradicted(world: World, monkeypatch: pytest.MonkeyPatch, _: Path) -> str:
    monkeypatch.setenv("ADMIN_SECRET_HOSTS", f"{world.admin_arn}=db.elsewhere.internal:3306")
    return world.app_arn


CASES: dict[str, tuple[Case, type[RotatorError], str]] = {
    "secret string not JSON": (not_json, SecretFormatError, "not valid JSON"),
    "missing keys": (missing_host, SecretFormatError, "missing required key(s): host"),
    "unknown engine": (unknown_engine, SecretFormatError, "unsupported engine 'oracle'"),
    "masterarn pointing nowhere": (masterarn_nowhere, SecretStoreError, "does-not-exist-AbCdEf: not found"),
    "database unreachable": (database_unreachable, DatabaseUnreachableError, "cannot reach 127.0.0.1"),
    "wrong admin password": (wrong_admin_password, DatabaseAuthError, "admin 'admin'"),
    "TLS certificate not trusted": (untrusted_certificate, DatabaseTLSError, "TLS verification of 127.0.0.1"),
    "pending points elsewhere": (tampered_pending_host, SecretMismatchError, "differs from current in host"),
    "hostless admin secret, host unconfirmed": (hostless_admin_unconfirmed, AdminHostError, "has no host, and nothing"),
    "admin host contradicted": (admin_host_contradicted, AdminHostError, "ADMIN_SECRET_HOSTS confirms db.elsewhere"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_input_fails_typed_and_changes_nothing(
    case: str, world: World, monkeypatch: pytest.MonkeyPatch, tmp_path: Path, leak_check: LeakCheck
) -> None:
    """Each bad input fails with its typed error naming the secret, before any change."""
    prepare, error_type, message = CASES[case]
    target = prepare(world, monkeypatch, tmp_path)
    arn, _, token = target.partition("#")
    token = token or begin_rotation(world.client, arn)
    db_before, secret_before = accounts_snapshot(world.server), secret_snapshot(world, arn)

    error = run_until_failure(world, arn, token)
    leak_check.record(error)

    assert isinstance(error, error_type), f"{type(error).__name__}: {error}"
    assert message in str(error)
    assert error.secret_id == arn and str(error).startswith(arn)
    assert accounts_snapshot(world.server) == db_before
    assert secret_snapshot(world, arn) == secret_before
    assert world.can_use_grants(world.app_secret())
    leak_check.assert_clean(*world.all_passwords())


def test_token_that_is_not_a_version_is_refused(world: World) -> None:
    """A ClientRequestToken that is no version of the secret is an error, not a no-op."""
    begin_rotation(world.client, world.app_arn)
    with pytest.raises(RotationStateError, match="is not a version of this secret"):
        assert world.invoke is not None
        world.invoke(event(world.app_arn, str(uuid.uuid4()), "createSecret"))


def test_token_not_staged_pending_is_refused(world: World) -> None:
    """A version that is neither AWSCURRENT nor AWSPENDING (e.g. AWSPREVIOUS) is refused."""
    world.rotate()
    previous = next(v for v, s in stages(world.client, world.app_arn).items() if "AWSPREVIOUS" in s)
    assert world.invoke is not None
    with pytest.raises(RotationStateError, match="not staged AWSPENDING"):
        world.invoke(event(world.app_arn, previous, "setSecret"))


def test_rotation_disabled_is_refused(world: World) -> None:
    """A secret without rotation turned on is never touched."""
    current = next(v for v, s in stages(world.client, world.app_arn).items() if "AWSCURRENT" in s)
    assert world.invoke is not None
    with pytest.raises(RotationStateError, match="rotation is not enabled"):
        world.invoke(event(world.app_arn, current, "createSecret"))


def test_setsecret_before_createsecret_is_refused(world: World) -> None:
    """setSecret with an empty pending version says createSecret has not run."""
    token = begin_rotation(world.client, world.app_arn)
    assert world.invoke is not None
    with pytest.raises(RotationStateError, match="createSecret has not run"):
        world.invoke(event(world.app_arn, token, "setSecret"))


def test_token_already_current_is_a_no_op_for_every_step(world: World) -> None:
    """Redelivering any step of a finished rotation succeeds without doing anything."""
    world.rotate()
    token = next(v for v, s in stages(world.client, world.app_arn).items() if "AWSCURRENT" in s)
    assert world.invoke is not None
    for step in ("createSecret", "setSecret", "testSecret", "finishSecret"):
        assert world.invoke(event(world.app_arn, token, step))["outcome"] == "already-current"


def test_malformed_event_is_refused(world: World) -> None:
    """An event without a token or with an unknown step fails before any AWS call."""
    from rotator.errors import InvalidEventError

    assert world.invoke is not None
    with pytest.raises(InvalidEventError, match="unknown step 'rotateSecret'"):
        world.invoke({"SecretId": world.app_arn, "ClientRequestToken": "t" * 36, "Step": "rotateSecret"})
    with pytest.raises(InvalidEventError):
        world.invoke({"SecretId": world.app_arn, "Step": "createSecret"})
