"""No way to a lock-out (issue 25), on real servers: retries against failed-login limits, the
rotation after an abandoned one, other hands on the account, non-ASCII passwords, the
failed-login limits ``rotator check`` warns about, and lock names that fit every server.

What ``rotator fix`` does is tests/integration/test_fix.py; the crash cases are rows of
the fault matrix (tests/integration/test_faults.py).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pymysql
import pytest

from rotator import bootstrap
from rotator.errors import AccountLockedError, DatabaseError, ForeignPasswordError
from rotator.ports import CURRENT, PENDING, PREVIOUS
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.support.aws import begin_rotation, event, stages
from tests.support.cli import Cli, CliRun
from tests.support.families import only_on
from tests.support.observe import Emitted
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.integration

SAME_USER = {"rotation_strategy": "single-user"}
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class Steps:
    """The function's steps on one world, its output kept (capsys: the CLI reads it too) so
    that the end of each case can prove no password was printed."""

    def __init__(self, world: World, capsys: pytest.CaptureFixture[str]) -> None:
        self.world = world
        self._capsys = capsys
        self.output = ""
        self.errors: list[str] = []

    def __call__(self, token: str, name: str) -> dict[str, Any]:
        assert self.world.invoke is not None
        try:
            result: dict[str, Any] = self.world.invoke(event(self.world.app_arn, token, name))
        except Exception as exc:
            self.errors.append(f"{type(exc).__name__}: {exc}")
            raise
        finally:
            self.output += self._capsys.readouterr().out
        return result

    def rotate(self, token: str | None = None) -> list[dict[str, Any]]:
        token = token or begin_rotation(self.world.client, self.world.app_arn)
        return [self(token, name) for name in STEPS]

    def cli(self, cli: Cli, *argv: str) -> CliRun:
        self.output += self._capsys.readouterr().out
        run = cli(*argv)
        self.output += run.text
        return run

    @property
    def emitted(self) -> Emitted:
        self.output += self._capsys.readouterr().out
        return Emitted.parse(self.output)

    def assert_no_password(self, *more: str) -> None:
        text = self.emitted.text + "\n".join(self.errors)
        secrets = {*self.world.all_passwords(), *more}
        assert [secret for secret in secrets if secret and secret in text] == []


@pytest.fixture
def steps(capsys: pytest.CaptureFixture[str]) -> Callable[[World], Steps]:
    return lambda world: Steps(world, capsys)


@pytest.fixture
def login_limit(db: DatabaseServer) -> Iterator[Callable[[World, int], None]]:
    """A failed-login limit on the application user: MySQL FAILED_LOGIN_ATTEMPTS n (per account, with
    a lock time), MariaDB max_password_errors = n (global; restored, and blocks lifted, after the case)."""

    def apply(world: World, attempts: int) -> None:
        if db.family == "mysql":
            db.sql(f"ALTER USER %s@'%%' FAILED_LOGIN_ATTEMPTS {attempts} PASSWORD_LOCK_TIME 1", (world.app_user,))
        else:
            db.sql("SET GLOBAL max_password_errors = %s", (attempts,))

    yield apply
    if db.family == "mariadb":
        db.sql("SET GLOBAL max_password_errors = DEFAULT")
        db.sql("FLUSH PRIVILEGES")


def changed(db: DatabaseServer) -> str:
    """setSecret's outcome for a single user without dual passwords (MySQL: a counted fallback)."""
    return "password-changed-without-dual" if db.family == "mysql" else "password-changed"


# -- retries against failed-login limits ------------------------------------------------------


def test_a_retried_set_secret_never_locks_the_account(
    world_factory: Callable[..., World],
    steps: Callable[[World], Steps],
    login_limit: Callable[[World, int], None],
    db: DatabaseServer,
) -> None:
    """Single user, no dual passwords, a failed-login limit of 1 (MySQL FAILED_LOGIN_ATTEMPTS 1,
    MariaDB max_password_errors = 1): setSecret changes the password, then is delivered again. The
    retry tries the pending password first (ROTATOR_SETTING is on its version) and makes no refused
    login, so the account is not locked and the rotation completes. The same retry without the label
    (a rotation begun before it existed) tries AWSCURRENT first and locks the account: what issue 25
    found."""
    world = world_factory(single_user=True)
    run = steps(world)
    login_limit(world, 1)
    token = begin_rotation(world.client, world.app_arn)
    run(token, "createSecret")
    assert run(token, "setSecret")["outcome"] == changed(db)
    assert "ROTATOR_SETTING" in stages(world.client, world.app_arn)[token]
    assert run(token, "setSecret")["outcome"] == "password-already-set"
    assert [run(token, name)["outcome"] for name in STEPS[2:]] == ["login-ok", "promoted"]
    assert world.can_use_grants(world.app_secret()), "the account was locked"

    control = begin_rotation(world.client, world.app_arn)
    run(control, "createSecret")
    run(control, "setSecret")
    for holder in [v for v, labels in stages(world.client, world.app_arn).items() if "ROTATOR_SETTING" in labels]:
        world.client.update_secret_version_stage(
            SecretId=world.app_arn, VersionStage="ROTATOR_SETTING", RemoveFromVersionId=holder
        )
    with pytest.raises(AccountLockedError, match=r"locked after failed logins"):
        run(control, "setSecret")
    run.assert_no_password()


def test_a_retried_same_user_rotation_makes_no_refused_login_under_a_limit(
    world_factory: Callable[..., World],
    steps: Callable[[World], Steps],
    login_limit: Callable[[World, int], None],
    db: DatabaseServer,
) -> None:
    """The same user set by the admin, a limit of 1: setSecret twice, then testSecret. testSecret
    does not try AWSCURRENT's password where a limit would count a refusal (it only warns), so the
    account is never locked; on MySQL AWSCURRENT's still logs in as the secondary."""
    world = world_factory(extra_secret_fields=SAME_USER)
    run = steps(world)
    login_limit(world, 1)
    current = world.app_secret()
    token = begin_rotation(world.client, world.app_arn)
    run(token, "createSecret")
    run(token, "setSecret")
    run(token, "setSecret")
    assert run(token, "testSecret")["outcome"] == "login-ok"
    assert run(token, "finishSecret")["outcome"] == "promoted"
    assert world.can_use_grants(world.app_secret())
    if db.family == "mysql":  # (on MariaDB it is refused: proving it would block the account)
        assert world.logs_in(current)
    assert world.can_use_grants(world.app_secret()), "a refused login locked the account"
    run.assert_no_password()


@contextmanager
def own_change_fails(db: DatabaseServer, failure: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The user's own password change fails before it applies: ``refused``, the server says no
    (``read_only``: error 1290); ``not-sent``, the driver fails to build the statement (PyMySQL's
    formatting raises, nothing reaches the server). Yields what the error says."""
    if failure == "refused":
        db.sql("SET GLOBAL read_only = ON")
        try:
            yield r"set own password failed \(error 1290\)"
        finally:
            db.sql("SET GLOBAL read_only = OFF")
        return
    format_statement = pymysql.cursors.Cursor._mogrify

    def mogrify(cursor: pymysql.cursors.Cursor, query: str, args: object = None) -> str:
        if query.startswith("SET PASSWORD") or "USER() IDENTIFIED" in query:
            raise ValueError("unsupported format character")
        return format_statement(cursor, query, args)

    with monkeypatch.context() as patch:
        patch.setattr(pymysql.cursors.Cursor, "_mogrify", mogrify)
        yield r"set own password could not be sent \(ValueError\): nothing was executed"


@pytest.mark.parametrize("failure", ["refused", "not-sent"])
def test_a_change_that_did_not_apply_moves_the_label_back_and_the_retry_logs_in_first_time(
    world_factory: Callable[..., World],
    steps: Callable[[World], Steps],
    login_limit: Callable[[World, int], None],
    db: DatabaseServer,
    monkeypatch: pytest.MonkeyPatch,
    failure: str,
) -> None:
    """Single user, a failed-login limit of 1, and a password change that fails before it applies
    (refused by the server, or never sent). setSecret raises that error with the password unchanged
    and ROTATOR_SETTING back on AWSCURRENT's version; the retry logs in with AWSCURRENT's password
    first: no refused login, the account not locked, the rotation completes. Control: with the
    label left on the pending version (what a death between the label and the change leaves), the
    same retry is refused first and the account is locked (docs/reliability.md, "ROTATOR_SETTING")."""
    world = world_factory(single_user=True)
    run = steps(world)
    login_limit(world, 1)
    current = world.app_secret()
    token = begin_rotation(world.client, world.app_arn)
    run(token, "createSecret")
    with own_change_fails(db, failure, monkeypatch) as says, pytest.raises(DatabaseError, match=says):
        run(token, "setSecret")
    labels = stages(world.client, world.app_arn)
    assert "ROTATOR_SETTING" in labels[version_with(labels, CURRENT)]
    assert "ROTATOR_SETTING" not in labels[token]
    assert run(token, "setSecret")["outcome"] == changed(db)
    assert [run(token, name)["outcome"] for name in STEPS[2:]] == ["login-ok", "promoted"]
    assert world.can_use_grants(world.app_secret()), "a refused login locked the account"
    assert world.app_secret(PREVIOUS)["password"] == current["password"]

    control = begin_rotation(world.client, world.app_arn)
    run(control, "createSecret")
    with own_change_fails(db, failure, monkeypatch), pytest.raises(DatabaseError):
        run(control, "setSecret")
    labels = stages(world.client, world.app_arn)
    world.client.update_secret_version_stage(
        SecretId=world.app_arn,
        VersionStage="ROTATOR_SETTING",
        MoveToVersionId=control,
        RemoveFromVersionId=version_with(labels, "ROTATOR_SETTING"),
    )
    with pytest.raises(AccountLockedError, match=r"locked after failed logins"):
        run(control, "setSecret")
    run.assert_no_password()


def version_with(labels: dict[str, list[str]], stage: str) -> str:
    return next(version for version, held in labels.items() if stage in held)


# -- the rotation after an abandoned one ------------------------------------------------------


@pytest.mark.parametrize("labels_left", ["setting", "none"])
def test_the_next_rotation_recovers_an_abandoned_rotations_password(
    world_factory: Callable[..., World],
    steps: Callable[[World], Steps],
    login_limit: Callable[[World, int], None],
    db: DatabaseServer,
    labels_left: str,
) -> None:
    """A single-user rotation abandoned after setSecret, and its AWSPENDING label removed by hand (what
    fix did before issue 25): the database holds a password no label points at. The next rotation
    tries the abandoned version first (ROTATOR_SETTING still on it) — with a limit of 1, no refused
    login — and recovers. With every label gone, it finds it among the unlabelled versions
    (ListSecretVersionIds, deprecated ones included) after AWSCURRENT is refused. Either way the
    notice and its metric say so."""
    world = world_factory(single_user=True)
    run = steps(world)
    abandoned = begin_rotation(world.client, world.app_arn)
    run(abandoned, "createSecret")
    run(abandoned, "setSecret")
    for label in ("AWSPENDING", "ROTATOR_SETTING") if labels_left == "none" else ("AWSPENDING",):
        world.client.update_secret_version_stage(
            SecretId=world.app_arn, VersionStage=label, RemoveFromVersionId=abandoned
        )
    if labels_left == "setting":
        login_limit(world, 1)
    results = run.rotate()
    assert [r["outcome"] for r in results] == ["created", changed(db), "login-ok", "promoted"]
    assert results[1]["notices"] == ["abandoned-rotation-password"]
    assert world.can_use_grants(world.app_secret())
    assert run.emitted.metric("AbandonedRotationRecovered", Step="setSecret") == [1.0]
    warning = [log for log in run.emitted.messages("WARNING") if "another version than AWSCURRENT" in log["message"]]
    assert warning and warning[0]["version"] == abandoned
    run.assert_no_password()


# -- other hands on the account (MySQL dual passwords) ----------------------------------------

DUAL = {"single_user": True, "dual_passwords": True}


def other_hands(db: DatabaseServer, world: World, *statements: str) -> str:
    """Someone else changes the account (as root); returns the password they used."""
    theirs = "someone-elses-7Qx2"
    for statement in statements:
        db.sql(statement, (world.app_user, theirs) if statement.count("%s") == 2 else (world.app_user,))
    return theirs


def findings(run: CliRun) -> dict[str, dict[str, str]]:
    [secret] = run.json()["secrets"]
    return {finding["check"]: finding for finding in secret["findings"]}


@only_on("mysql", "dual passwords are MySQL 8.0.14+")
@pytest.mark.parametrize("mode", ["single-user-dual", "same-user"])
def test_a_foreign_secondary_password_is_reported_before_it_is_replaced(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], db: DatabaseServer, db_cli: Cli, mode: str
) -> None:
    """After a rotation someone leaves a secondary password of their own (the primary AWSCURRENT's):
    rotator check warns (db.passwords), and the next setSecret logs a WARNING and counts
    ForeignSecondaryPassword before its RETAIN replaces it; AWSCURRENT stays the secondary."""
    world = world_factory(**(DUAL if mode == "single-user-dual" else {"extra_secret_fields": SAME_USER}))
    run = steps(world)
    run.rotate()
    current = world.app_secret()
    theirs = "someone-elses-7Qx2"
    db.sql("ALTER USER %s@'%%' IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (world.app_user, theirs))
    db.sql("ALTER USER %s@'%%' IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (world.app_user, current["password"]))
    assert world.logs_in({**current, "password": theirs})

    found = findings(run.cli(db_cli, "check", world.app_arn, "--json"))["db.passwords"]
    assert found["level"] == "warn" and "someone else's" in found["message"]
    results = run.rotate()
    assert results[1]["notices"] == ["foreign-secondary-password"]
    assert results[1]["outcome"] in ("password-changed-retaining-current", "password-set-retaining-current")
    assert run.emitted.metric("ForeignSecondaryPassword", Step="setSecret") == [1.0]
    assert [log for log in run.emitted.messages("WARNING") if "secondary password" in log["message"]]
    assert world.logs_in(current) and not world.logs_in({**current, "password": theirs})
    run.assert_no_password(theirs)


@only_on("mysql", "dual passwords are MySQL 8.0.14+")
@pytest.mark.parametrize("mode", ["single-user-dual", "same-user"])
def test_a_primary_changed_by_someone_else_never_opens_a_window(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], db: DatabaseServer, db_cli: Cli, mode: str
) -> None:
    """Someone sets their own primary password and keeps AWSCURRENT's as the secondary. Before acting,
    setSecret finds it (the user's REPLACE is refused; the admin reads the hashes), replaces the primary
    without RETAIN — so AWSCURRENT's stays the secondary and logs in throughout: no window, not stuck
    on 1045 — and counts ForeignPrimaryPassword. The admin's case is a check finding beforehand."""
    world = world_factory(**(DUAL if mode == "single-user-dual" else {"extra_secret_fields": SAME_USER}))
    run = steps(world)
    current = world.app_secret()
    theirs = "someone-elses-7Qx2"
    db.sql("ALTER USER %s@'%%' IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (world.app_user, theirs))
    if mode == "same-user":
        found = findings(run.cli(db_cli, "check", world.app_arn, "--json"))["db.passwords"]
        assert found["level"] == "warn" and "is not AWSCURRENT's" in found["message"]
    token = begin_rotation(world.client, world.app_arn)
    run(token, "createSecret")
    result = run(token, "setSecret")
    assert result["notices"] == ["foreign-primary-password"]
    assert result["outcome"] in ("password-changed-retaining-current", "password-set-retaining-current")
    assert world.logs_in(current), "AWSCURRENT refused between setSecret and finishSecret: a window"
    assert run(token, "testSecret")["outcome"] == "login-ok-both"
    assert run(token, "finishSecret")["outcome"] == "promoted"
    assert world.logs_in(world.app_secret()) and world.logs_in(current)
    assert not world.logs_in({**current, "password": theirs})
    assert run.emitted.metric("ForeignPrimaryPassword", Step="setSecret") == [1.0]
    run.assert_no_password(theirs)


@only_on("mysql", "PASSWORD REQUIRE CURRENT and dual passwords are MySQL's")
def test_a_foreign_primary_that_cannot_be_replaced_stops_with_a_typed_error(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], db: DatabaseServer
) -> None:
    """The same, on an account that requires the current password to change it: the user cannot name
    the primary (it is someone else's), so setSecret stops with ForeignPasswordError naming what
    happened and what to do; nothing changed: AWSCURRENT and their password both still log in.
    ROTATOR_SETTING goes back to AWSCURRENT's version (nothing was set), so Secrets Manager's
    retries, under a failed-login limit of 1, stop the same way without locking the account."""
    world = world_factory(**DUAL)
    run = steps(world)
    current = world.app_secret()
    theirs = "someone-elses-7Qx2"
    db.sql("ALTER USER %s@'%%' PASSWORD REQUIRE CURRENT", (world.app_user,))
    db.sql("ALTER USER %s@'%%' IDENTIFIED BY %s RETAIN CURRENT PASSWORD", (world.app_user, theirs))
    token = begin_rotation(world.client, world.app_arn)
    run(token, "createSecret")
    with pytest.raises(
        ForeignPasswordError, match=r"is not AWSCURRENT's .*\(PASSWORD REQUIRE CURRENT\); nothing was changed"
    ):
        run(token, "setSecret")
    labels = stages(world.client, world.app_arn)
    assert "ROTATOR_SETTING" not in labels[token]
    assert [v for v, found in labels.items() if "ROTATOR_SETTING" in found] == [
        v for v, found in labels.items() if "AWSCURRENT" in found
    ]
    db.sql("ALTER USER %s@'%%' FAILED_LOGIN_ATTEMPTS 1 PASSWORD_LOCK_TIME 1", (world.app_user,))
    with pytest.raises(ForeignPasswordError):
        run(token, "setSecret")
    assert world.logs_in(current) and world.logs_in({**current, "password": theirs})
    assert not world.logs_in(world.app_secret("AWSPENDING"))
    run.assert_no_password(theirs)


# -- passwords are bytes the server accepts ------------------------------------------------------

NON_ASCII = {"latin": "Pässwörd-ä1", "cjk-emoji": "密码-🔑-パスワード-1"}


def set_password(db: DatabaseServer, world: World, arn: str, user: str, password: str) -> None:
    """The account's password and the secret's AWSCURRENT, both set to ``password`` (as an operator
    with a UTF-8 client would: the root connection is utf8mb4)."""
    db.sql("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))
    value = json.loads(world.client.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
    world.client.put_secret_value(SecretId=arn, SecretString=json.dumps({**value, "password": password}))


@pytest.mark.parametrize("text", sorted(NON_ASCII))
@pytest.mark.parametrize("mode", ["alternating", "single-user", "same-user"])
def test_a_non_ascii_current_password_logs_in_and_rotates(
    world_factory: Callable[..., World],
    steps: Callable[[World], Steps],
    db: DatabaseServer,
    db_cli: Cli,
    mode: str,
    text: str,
) -> None:
    """An existing secret whose password is not ASCII ("Pässwörd", CJK and emoji): rotator logs in
    with it (UTF-8, the bytes the server hashed; PyMySQL's default latin-1 was refused with 1045 or
    raised UnicodeEncodeError), check says db.login ok, and the rotation completes."""
    fields = {"alternating": {}, "single-user": {"single_user": True}, "same-user": {"extra_secret_fields": SAME_USER}}
    world = world_factory(**fields[mode])
    run = steps(world)
    set_password(db, world, world.app_arn, world.app_user, NON_ASCII[text])
    assert findings(run.cli(db_cli, "check", world.app_arn, "--json"))["db.login"]["level"] == "ok"
    assert run.rotate()[-1]["outcome"] == "promoted"
    assert world.can_use_grants(world.app_secret())
    run.assert_no_password(NON_ASCII[text])


@pytest.mark.parametrize("mode", ["alternating", "same-user"])
def test_a_non_ascii_admin_password_works(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], db: DatabaseServer, mode: str
) -> None:
    """The admin's password is not ASCII: the admin logs in and the rotation completes."""
    world = world_factory(**({} if mode == "alternating" else {"extra_secret_fields": SAME_USER}))
    run = steps(world)
    set_password(db, world, world.admin_arn, world.admin_user, NON_ASCII["cjk-emoji"])
    assert run.rotate()[-1]["outcome"] == "promoted"
    assert world.can_use_grants(world.app_secret())
    run.assert_no_password(NON_ASCII["cjk-emoji"])


@pytest.mark.parametrize("mode", ["single-user", "same-user"])
def test_a_non_ascii_pending_password_is_set_and_tested_alike(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], mode: str
) -> None:
    """A pending value someone staged with a non-ASCII password (PutSecretValue before the rotation):
    setSecret's statement and testSecret's login agree on its bytes (on MySQL the admin's ALTER USER
    had set it and every testSecret failed), and clients log in with it."""
    world = world_factory(**({"single_user": True} if mode == "single-user" else {"extra_secret_fields": SAME_USER}))
    run = steps(world)
    token = begin_rotation(world.client, world.app_arn)
    staged = {**world.app_secret(), "password": NON_ASCII["cjk-emoji"] + "-new"}
    world.client.put_secret_value(
        SecretId=world.app_arn, ClientRequestToken=token, SecretString=json.dumps(staged), VersionStages=["AWSPENDING"]
    )
    assert next(r["outcome"] for r in run.rotate(token)) == "pending-exists"
    assert world.app_secret()["password"] == staged["password"] and world.can_use_grants(world.app_secret())
    run.assert_no_password(staged["password"])


def test_the_admin_reads_which_password_an_account_holds(db: DatabaseServer, world: World) -> None:
    """The stored hashes as each family writes them (MariaDB mysql_native_password; MySQL
    caching_sha2_password and sha256_password, with a secondary) are read and matched: the password
    each account was given, under the key of the candidate that holds it, and nothing else."""
    container = bootstrap.build(Settings.from_env())
    app = DatabaseSecret.parse(world.app_arn, json.dumps(world.app_secret()))
    admin = DatabaseSecret.parse(world.admin_arn, json.dumps(world.admin_secret()), require_host=False)
    plugins = ["caching_sha2_password", "sha256_password"] if db.family == "mysql" else ["mysql_native_password"]
    for plugin in plugins:
        clause = f"IDENTIFIED WITH {plugin} BY %s" if db.family == "mysql" else "IDENTIFIED BY %s"
        db.sql(f"ALTER USER 'app'@'%%' {clause}", ("Pässwörd-old",))
        if db.family == "mysql":
            db.sql("ALTER USER 'app'@'%%' IDENTIFIED BY %s RETAIN CURRENT PASSWORD", ("Pässwörd-new",))
        with container.database.admin(admin, app) as session:
            (held,) = session.passwords_held("app", {CURRENT: "Pässwörd-new", PREVIOUS: "Pässwörd-old", PENDING: "x"})
        if db.family == "mysql":
            assert (held.known, held.primary, held.secondary, held.has_secondary) == (True, CURRENT, PREVIOUS, True)
        else:
            assert (held.known, held.primary, held.has_secondary) == (True, PREVIOUS, False)


# -- rotator check warns about failed-login limits -----------------------------------------------


@pytest.mark.parametrize("mode", ["single-user", "alternating"])
def test_check_warns_about_a_failed_login_limit(
    world_factory: Callable[..., World],
    login_limit: Callable[[World, int], None],
    db_cli: Cli,
    db: DatabaseServer,
    mode: str,
) -> None:
    """A failed-login limit makes rotation fragile (stale clients' refused logins lock the account, and a
    lock-out refuses the right password too): check warns (db.login-limit) naming the limit and the way
    out; without one, no such line."""
    world = world_factory(single_user=(mode == "single-user"))
    assert "db.login-limit" not in findings(db_cli("check", world.app_arn, "--json"))
    login_limit(world, 2)
    found = findings(db_cli("check", world.app_arn, "--json"))["db.login-limit"]
    assert found["level"] == "warn"
    expected = "FAILED_LOGIN_ATTEMPTS 2" if db.family == "mysql" else "max_password_errors = 2"
    assert expected in found["message"] and "2 refused logins in a row" in found["message"]
    assert "3955/4150" in found["action"]
    if mode == "single-user" and db.family == "mariadb":
        assert "single-user window" in found["message"]


# -- lock names that fit every server ----------------------------------------------------------


def test_a_long_multibyte_user_name_rotates_with_the_admin(
    world_factory: Callable[..., World], steps: Callable[[World], Steps], db: DatabaseServer
) -> None:
    """The same user set by the admin, a long user name in 3-byte characters (MariaDB: 80, AWS's limit;
    MySQL: 16, past which MySQL 9.7 itself mis-grants such names): the named lock held around the change
    fits (hashed: MariaDB takes at most 192 bytes, error 1059; MySQL 64 characters) and the rotation
    completes — twice, the same lock each time."""
    user = "用" * (80 if db.family == "mariadb" else 16)
    assert len(f"rotator.password:{user}".encode()) > 64
    world = world_factory(app_user=user, extra_secret_fields=SAME_USER)
    run = steps(world)
    for _ in range(2):
        assert run.rotate()[-1]["outcome"] == "promoted"
    assert world.app_secret()["username"] == user and world.logs_in(world.app_secret())
    run.assert_no_password()
