"""The scheduled readiness check (the canary, ``rotator.canary.lambda_handler``) against the
real database and moto: for every reason it reports a secret not ready, a secret in that
state gets ``Ready`` 0 with the reason in its EMF record and a log line naming the check,
no output holds a password, and nothing in Secrets Manager or the database changed."""

from __future__ import annotations

import datetime
import json
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from moto.secretsmanager.models import secretsmanager_backends

from rotator import canary, iam_policies
from tests.support.attached import attach_without_rotating
from tests.support.aws import FAKE_FUNCTION, begin_rotation, secret_value
from tests.support.families import account_tables_reader, only_on, socket_host
from tests.support.lambda_context import FakeLambdaContext
from tests.support.observe import Emitted, leaked, secret_strings
from tests.support.servers import DatabaseServer, free_port, make_pki
from tests.support.snapshot import changed, database_snapshot, secrets_snapshot
from tests.support.world import World

pytestmark = pytest.mark.integration

Build = Callable[..., World]
ACCOUNT = "123456789012"
OTHER_FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:someone-elses-rotation"
# Every Secrets Manager call the canary may make: the read-only actions its role and
# the endpoint policy allow it (rotator.iam_policies), nothing that writes.
CANARY_ACTIONS = {
    action.split(":")[1]
    for action in (
        *iam_policies.CANARY_SECRET_ACTIONS,
        *iam_policies.CANARY_ADMIN_ACTIONS,
        *iam_policies.CANARY_ACCOUNT_ACTIONS,
    )
}


@dataclass
class CanaryRun:
    result: dict[str, Any] | None
    error: BaseException | None
    emitted: Emitted
    calls: list[str]

    def ready(self, name: str) -> list[float]:
        """Ready of the secrets called ``name`` (the metric is by SecretArn; the name is a property)."""
        found = [r["Ready"] for r in self.emitted.emf if r.get("secret") == name and "Ready" in r]
        return [float(value) for values in found for value in (values if isinstance(values, list) else [values])]

    def record(self, name: str) -> dict[str, Any]:
        """The secret's own EMF record (Ready by SecretArn, with its failing checks and name as properties)."""
        (found,) = [r for r in self.emitted.emf if r.get("secret") == name and "Ready" in r]
        return found

    def findings(self, name: str) -> dict[str, dict[str, Any]]:
        """The secret's log lines, one per finding, by check."""
        lines = [log for log in self.emitted.logs if log.get("secret") == name and "check" in log]
        by_check = {log["check"]: log for log in lines}
        assert len(by_check) == len(lines), "one log line per finding"
        return by_check


class Canary:
    """The canary function as the schedule invokes it, with the stack's environment."""

    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        monkeypatch.setenv("ROTATION_FUNCTION_ARN", FAKE_FUNCTION)
        monkeypatch.setenv("CANARY_SECRET_ARNS", "")

    def watch(self, *arns: str, all_rotated: bool = False) -> None:
        self._monkeypatch.setenv("CANARY_SECRET_ARNS", ",".join(arns))
        self._monkeypatch.setenv("CANARY_CHECK_ALL_ROTATED", "true" if all_rotated else "false")
        canary._container.cache_clear()

    def __call__(self, context: FakeLambdaContext | None = None) -> CanaryRun:
        self._capsys.readouterr()
        calls: list[str] = []
        client = canary._container().api.client
        client.meta.events.register("before-call.secrets-manager", lambda model, **_: calls.append(model.name))
        result: dict[str, Any] | None = None
        error: BaseException | None = None
        try:
            result = canary.lambda_handler({}, context or FakeLambdaContext(function_name="rotator-canary"))
        except Exception as exc:
            error = exc
        captured = self._capsys.readouterr()
        return CanaryRun(result, error, Emitted.parse(captured.out + captured.err), calls)


@pytest.fixture
def run_canary(
    function_env: DatabaseServer, aws: Any, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Canary]:
    canary._container.cache_clear()
    yield Canary(capsys, monkeypatch)
    canary._container.cache_clear()


def attach(world: World, function: str = FAKE_FUNCTION) -> None:
    attach_without_rotating(world.client, world.app_arn, function)


def put_current(world: World, arn: str, **changes: Any) -> None:
    value = {key: item for key, item in {**secret_value(world.client, arn), **changes}.items() if item is not None}
    world.client.put_secret_value(SecretId=arn, SecretString=json.dumps(value))


def current_user(world: World) -> str:
    return str(world.app_secret()["username"])


def twin_of(user: str) -> str:
    return user.removesuffix("_clone") if user.endswith("_clone") else f"{user}_clone"


def set_dates(arn: str, *, last: datetime.datetime | None, due: datetime.datetime | None) -> None:
    """What Secrets Manager records as LastRotatedDate and NextRotationDate (moto sets
    neither the way AWS does: it has no function to complete a rotation)."""
    secret = secretsmanager_backends[ACCOUNT]["us-east-1"].secrets[arn]
    secret.last_rotation_date = int(last.timestamp()) if last else None
    secret.next_rotation_date = int(due.timestamp()) if due else None


# -- the reasons, each a state a secret can be in -------------------------------------------


@dataclass
class Scene:
    build: Build
    db: DatabaseServer
    tmp: Path
    request: pytest.FixtureRequest
    clock: Callable[[float], None]

    def attached(self, **kwargs: Any) -> World:
        world = self.build(**kwargs)
        attach(world)
        return world

    def admin_with(self, *grants: str) -> World:
        return self.attached(admin_grants=grants)


def wrong_app_password(scene: Scene) -> World:
    world = scene.attached()
    scene.db.sql("ALTER USER 'app'@'%' IDENTIFIED BY 'changed-behind-our-back-1'")
    return world


def admin_password_changed(scene: Scene) -> World:
    world = scene.attached()
    scene.db.sql("ALTER USER 'admin'@'%' IDENTIFIED BY 'changed-behind-our-back-2'")
    return world


def untrusted_certificate(scene: Scene) -> World:
    return scene.attached(extra_secret_fields={"ssl_ca": str(make_pki(scene.tmp / "ca", "another CA").ca_file)})


def nothing_listening(scene: Scene) -> World:
    return scene.attached(extra_secret_fields={"port": free_port()})


def user_dropped(scene: Scene) -> World:
    world = scene.attached()
    scene.db.sql("DROP USER 'app'@'%'")
    return world


def admin_without_create_user(scene: Scene) -> World:
    return scene.admin_with(
        "GRANT SELECT ON *.* TO {account} WITH GRANT OPTION",
        "GRANT INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
    )


def admin_blind_to_accounts(scene: Scene) -> World:
    return scene.admin_with("GRANT CREATE USER ON *.* TO {account}")


def admin_reads_account_tables_only(scene: Scene) -> World:
    return scene.admin_with(*account_tables_reader(scene.db))


def admin_cannot_grant_a_table(scene: Scene) -> World:
    return scene.admin_with(
        "GRANT CREATE USER ON *.* TO {account}",
        "GRANT SELECT ON `mysql`.* TO {account}",
        "GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO {account} WITH GRANT OPTION",
    )


def admin_without_role_admin(scene: Scene) -> World:
    scene.db.sql("CREATE ROLE auditing")
    scene.db.sql("GRANT SELECT ON `reports`.* TO auditing")
    world = scene.attached(app_grants=("GRANT SELECT ON `appdb`.* TO {account}", "GRANT auditing TO {account}"))
    if scene.db.family == "mysql":  # ALL PRIVILEGES includes ROLE_ADMIN, which grants any role on MySQL
        scene.db.sql("REVOKE ROLE_ADMIN ON *.* FROM 'admin'@'%'")
    return world


def host_without_password(scene: Scene) -> World:
    world = scene.attached()
    socket_host(scene.db)
    return world


def proxy_not_grantable(scene: Scene) -> World:
    world = scene.attached()
    scene.db.sql("CREATE USER 'base'@'%' IDENTIFIED BY 'base-password-1'")
    scene.db.sql("GRANT PROXY ON 'base'@'%' TO 'app'@'%'")
    return world


def twin_with_system_user(scene: Scene) -> World:
    world = scene.attached()
    scene.db.sql("CREATE USER 'app_clone'@'%' IDENTIFIED BY 'leftover-password-1'")
    scene.db.sql("GRANT SYSTEM_USER ON *.* TO 'app_clone'@'%'")
    scene.db.sql("REVOKE SYSTEM_USER ON *.* FROM 'admin'@'%'")
    return world


def twin_is_the_admin(scene: Scene) -> World:
    return scene.attached(app_user="dba", admin_user="dba_clone")


def user_can_create_users(scene: Scene) -> World:
    return scene.attached(
        app_grants=("GRANT SELECT ON `appdb`.* TO {account}", "GRANT CREATE USER ON *.* TO {account}")
    )


def twin_name_too_long(scene: Scene) -> World:
    (limit,) = scene.db.sql(
        "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'"
    )[0]
    return scene.attached(app_user="u" * (int(limit) - 3))


def admin_on_another_server(scene: Scene) -> World:
    other: DatabaseServer = scene.request.getfixturevalue("second_server")
    world = scene.attached()
    other.sql("DROP USER IF EXISTS 'admin'@'%'")  # portable: MySQL has no CREATE OR REPLACE USER
    other.sql("CREATE USER 'admin'@'%%' IDENTIFIED BY %s", (world.admin_secret()["password"],))
    other.sql("GRANT ALL PRIVILEGES ON *.* TO 'admin'@'%' WITH GRANT OPTION")
    put_current(world, world.admin_arn, port=other.port)
    return world


def admin_secret_gone(scene: Scene) -> World:
    return scene.attached(
        extra_secret_fields={"masterarn": f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:x-AbCdEf"}
    )


def admin_host_unconfirmed(scene: Scene) -> World:
    """An RDS-managed admin secret (no host), and nothing confirms the application's host for it."""
    world = scene.attached()
    admin = world.admin_secret()
    world.client.put_secret_value(
        SecretId=world.admin_arn,
        SecretString=json.dumps({"username": admin["username"], "password": admin["password"]}),
    )
    return world


def unusable_value(scene: Scene) -> World:
    return scene.attached(extra_secret_fields={"engine": "oracle"})


def engine_without_backend(scene: Scene) -> World:
    """A PostgreSQL secret where the artifact lacks the PostgreSQL backend (its package cannot be imported)."""
    monkeypatch: pytest.MonkeyPatch = scene.request.getfixturevalue("monkeypatch")
    monkeypatch.setitem(sys.modules, "rotator.backends.postgresql", None)
    return scene.attached(extra_secret_fields={"engine": "postgres"})


def rotation_never_configured(scene: Scene) -> World:
    return scene.build()


def rotation_given_to_another_function(scene: Scene) -> World:
    world = scene.build()
    attach(world, OTHER_FUNCTION)
    return world


def rotation_turned_off(scene: Scene) -> World:
    world = scene.attached()
    world.client.cancel_rotate_secret(SecretId=world.app_arn)
    return world


def stuck_before_test_secret(scene: Scene) -> World:
    world = scene.attached()
    begin_rotation(world.client, world.app_arn)
    scene.clock(36)
    return world


def stuck_after_test_secret(scene: Scene) -> World:
    world = scene.attached()
    world.rotate(steps=("createSecret", "setSecret", "testSecret"))
    scene.clock(36)
    return world


def rotation_overdue(scene: Scene) -> World:
    world = scene.attached()
    now = datetime.datetime.now(datetime.UTC)
    set_dates(world.app_arn, last=now - datetime.timedelta(days=45), due=now - datetime.timedelta(days=15))
    return world


def granted_to_the_twin(scene: Scene) -> World:
    world = scene.attached()
    world.rotate()
    scene.db.sql(f"GRANT DELETE ON `reports`.* TO '{twin_of(current_user(world))}'@'%'")
    return world


REASONS = [
    (wrong_app_password, "db.login", "was refused"),
    (admin_password_changed, "db.admin-login", "admin 'admin'"),
    (untrusted_certificate, "db.tls", "TLS verification"),
    (nothing_listening, "db.reach", "cannot reach"),
    (user_dropped, "app.accounts", "has no account"),
    (admin_without_create_user, "admin.create-user", "lacks CREATE USER"),
    (admin_blind_to_accounts, "admin.read-accounts", "SELECT command denied"),
    (admin_cannot_grant_a_table, "admin.grant", "SELECT ON `reports`.`summary`"),
    (admin_reads_account_tables_only, "admin.read-definitions", "cannot read the definition of 'app'@'%'"),
    (admin_without_role_admin, "admin.roles", "`auditing`"),
    (host_without_password, "app.copy", "authentication plugin"),
    (proxy_not_grantable, "admin.proxy", "PROXY ON 'base'@'%'"),
    pytest.param(
        twin_with_system_user,
        "admin.system-user",
        "lacks SYSTEM_USER",
        marks=only_on("mysql", "SYSTEM_USER is MySQL 8's"),
        id="twin_with_system_user",
    ),
    (twin_is_the_admin, "target.names", "the admin secret's own user"),
    (user_can_create_users, "target.accounts", "CREATE USER"),
    (twin_name_too_long, "twin.name", "characters; the server allows"),
    (admin_on_another_server, "db.same-server", "different server"),
    (admin_secret_gone, "admin.secret", "not found"),
    (admin_host_unconfirmed, "admin.host", "has no host, and nothing confirms the application's host"),
    (unusable_value, "secret.value", "unsupported engine"),
    (engine_without_backend, "secret.engine", "engine postgres is not supported yet"),
    (rotation_never_configured, "rotation.config", "not configured"),
    (rotation_given_to_another_function, "rotation.config", "not this stack's function"),
    (rotation_turned_off, "rotation.config", "configured but disabled"),
    (stuck_before_test_secret, "rotation.state", "never passed testSecret"),
    (stuck_after_test_secret, "rotation.state", "finishSecret never promoted it"),
    (rotation_overdue, "rotation.last", "has not completed (the last one completed"),
    (granted_to_the_twin, "twin.drift", "DELETE ON `reports`.*"),
]


@pytest.mark.parametrize(("make", "check", "words"), REASONS, ids=lambda value: getattr(value, "__name__", None))
def test_each_reason_makes_a_secret_not_ready_and_changes_nothing(
    world_factory: Build,
    db: DatabaseServer,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    cli_clock: Callable[[float], None],
    run_canary: Canary,
    make: Callable[[Scene], World],
    check: str,
    words: str,
) -> None:
    """A secret in this state: Ready 0 with the check in the EMF record's failing checks, a
    'fail' log line naming the check with its action, SecretsNotReady 1, no password or secret
    string in any output, only read-only calls, and Secrets Manager and the database unchanged."""
    world = make(Scene(world_factory, db, tmp_path, request, cli_clock))
    run_canary.watch(world.app_arn)
    before = {**secrets_snapshot(world.client), **database_snapshot(db)}

    run = run_canary()

    assert changed(before, {**secrets_snapshot(world.client), **database_snapshot(db)}) == []
    assert run.error is None, run.error
    name = "app-db"
    assert run.ready(name) == [0.0]
    assert check in run.record(name)["failing_checks"]
    assert run.record(name)["SecretArn"] == world.app_arn
    line = run.findings(name)[check]
    assert (line["level"], line["result"]) == ("ERROR", "fail")
    assert words in line["message"], line["message"]
    assert line["action"] or check == "app.accounts"
    assert run.emitted.metric("SecretsNotReady") == [1.0]
    assert run.result == {"checked": 1, "not_ready": [world.app_arn], "error": None}
    assert set(run.calls) <= CANARY_ACTIONS, run.calls
    assert leaked(secret_strings(world.client, [world.app_arn, world.admin_arn]), run.emitted.text) == []


READINESS_MODULES = ("findings.py", "preflight.py", "secret_checks.py", "database_checks.py", "strategies.py")


def test_every_failing_check_the_core_can_report_has_a_case() -> None:
    """Each check id the readiness rules (readiness/, the checks and the strategies' pre-flight)
    can report as a failure about a secret's state is in REASONS (or in a test of its own below)."""
    core = Path(__file__).parents[2] / "src" / "rotator"
    files = [*(core / "readiness").glob("*.py"), *(core / name for name in READINESS_MODULES)]
    source = "\n".join(path.read_text() for path in files)
    ids = set(re.findall(r'"([a-z]+(?:\.[a-z-]+)+)",\s*Level\.FAIL', source))
    ids |= {"db.login", "db.admin-login", "db.tls", "db.reach"}  # made by _database_failure
    covered = {getattr(reason, "values", reason)[1] for reason in REASONS} | {
        "secret",
        "readiness.time",
        "readiness.error",
    }
    assert ids <= covered, ids - covered


# -- a healthy secret, several secrets, and what the canary reads -------------------------


def test_a_ready_secret_is_ready_one_with_a_log_line_per_finding(
    world: World, db: DatabaseServer, run_canary: Canary
) -> None:
    """A secret whose rotation is on and would work: Ready 1, no failing checks, one log line per
    finding (ok/warn/skip at INFO/WARNING), the next rotation date, no password anywhere."""
    attach(world)
    run_canary.watch(world.app_arn)
    run = run_canary()
    assert run.error is None and run.result == {"checked": 1, "not_ready": [], "error": None}
    assert run.ready("app-db") == [1.0]
    assert run.record("app-db")["failing_checks"] == []
    found = run.findings("app-db")
    for check in (
        "rotation.config", "rotation.state", "rotation.last", "rotation.next", "secret.value", "admin.secret",
        "db.login", "db.admin-login", "app.accounts", "admin.create-user", "admin.grant", "twin.state",
    ):  # fmt: skip
        assert found[check]["result"] == "ok" and found[check]["level"] == "INFO", found[check]
    assert "no rotation has completed yet; the first is due by" in found["rotation.last"]["message"]
    assert found["rotation.next"]["message"].startswith("next rotation due by")
    assert "password ********" in found["secret.value"]["message"]
    assert {log["secret_arn"] for log in run.emitted.logs if "check" in log} == {world.app_arn}
    assert run.emitted.metric("SecretsChecked") == [1.0] and run.emitted.metric("SecretsNotReady") == [0.0]
    assert leaked(secret_strings(world.client, [world.app_arn, world.admin_arn]), run.emitted.text) == []


def test_after_a_rotation_the_secret_stays_ready(world: World, run_canary: Canary) -> None:
    """Once rotated (the twin now the previous user), the pair checks clean: Ready 1, twin matches."""
    attach(world)
    world.rotate()
    run_canary.watch(world.app_arn)
    run = run_canary()
    assert run.ready("app-db") == [1.0]
    assert run.findings("app-db")["twin.state"]["message"].startswith("'app' exists and matches 'app_clone'")


def test_a_grant_to_the_current_user_is_not_drift(world: World, db: DatabaseServer, run_canary: Canary) -> None:
    """A privilege given to the AWSCURRENT user since the last rotation (the documented way) is a
    warning that the next rotation copies it, not a failure."""
    attach(world)
    world.rotate()
    db.sql(f"GRANT DELETE ON `reports`.* TO '{current_user(world)}'@'%'")
    run_canary.watch(world.app_arn)
    run = run_canary()
    assert run.ready("app-db") == [1.0]
    twin = run.findings("app-db")["twin.state"]
    assert twin["result"] == "warn" and "missing DELETE ON `reports`.*" in twin["message"]


def test_a_single_user_secret_is_ready_with_its_window_as_a_warning(world_factory: Build, run_canary: Canary) -> None:
    """Single user: the window where old logins fail is a WARNING line (secret.mode), not a failure;
    no admin or twin checks."""
    world = world_factory(single_user=True)
    attach(world)
    run_canary.watch(world.app_arn)
    run = run_canary()
    assert run.ready("app-db") == [1.0]
    found = run.findings("app-db")
    assert (found["secret.mode"]["result"], found["secret.mode"]["level"]) == ("warn", "WARNING")
    assert "twin.state" not in found and "admin.grant" not in found


def test_a_blocked_next_rotation_is_named(world: World, run_canary: Canary, cli_clock: Callable[[float], None]) -> None:
    """A stuck pending version also says when the next rotation is due and that it cannot start."""
    attach(world)
    token = begin_rotation(world.client, world.app_arn)
    cli_clock(36)
    run_canary.watch(world.app_arn)
    upcoming = run_canary().findings("app-db")["rotation.next"]
    assert upcoming["result"] == "warn" and f"AWSPENDING stays on version {token}" in upcoming["message"]


def test_every_secret_of_the_function_is_checked_and_an_unknown_one_is_not_ready(
    world_factory: Build, run_canary: Canary
) -> None:
    """With the listing option, a secret attached to the function but missing from the stack's list
    is checked too; a listed secret that does not exist is reported (secret) and the rest go on."""
    listed = world_factory()
    attach(listed)
    found = world_factory(app_user="billing", admin_user="billing_admin", name_prefix="billing/")
    attach(found)
    gone = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:deleted-db-AbCdEf"
    run_canary.watch(listed.app_arn, gone, all_rotated=True)
    run = run_canary()
    assert run.result is not None and run.result["checked"] == 3
    assert run.ready("app-db") == [1.0] and run.ready("billing/app-db") == [1.0]
    assert run.ready("deleted-db") == [0.0]
    assert "ResourceNotFoundException" in run.findings("deleted-db")["secret"]["message"]
    assert "ListSecrets" in run.calls and set(run.calls) <= CANARY_ACTIONS
    assert run.emitted.metric("SecretsNotReady") == [1.0]


def test_secrets_left_when_time_runs_out_are_reported_not_checked(world: World, run_canary: Canary) -> None:
    """With less time left than one secret may need, nothing is checked and every secret is
    reported not ready (readiness.time), so the alarm fires instead of going quiet."""
    attach(world)
    run_canary.watch(world.app_arn)
    run = run_canary(FakeLambdaContext(timeout_ms=5_000))
    assert run.ready("app-db") == [0.0]
    assert run.record("app-db")["failing_checks"] == ["readiness.time"]
    assert "not checked" in run.findings("app-db")["readiness.time"]["message"]
    assert run.calls == []
