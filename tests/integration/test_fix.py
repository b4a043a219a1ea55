"""``rotator fix`` after an abandoned rotation, on real servers: it finds out which version's
password the database holds and never removes the only label that points at it (issue 25).

Each case abandons a rotation the way Secrets Manager leaves one when it gives up (the
steps ran up to some point, the pending version stays AWSPENDING), then runs ``fix``
as an operator would: ``--dry-run`` first, then for real. The function's output and the
CLI's are checked for every password either secret ever held.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from tests.support.aws import begin_rotation, event, stages
from tests.support.cli import Cli, CliRun
from tests.support.families import only_on
from tests.support.observe import Emitted
from tests.support.servers import DatabaseServer
from tests.support.world import World

pytestmark = pytest.mark.integration

SAME_USER = {"rotation_strategy": "single-user"}
MODES: dict[str, dict[str, Any]] = {
    "alternating": {},
    "single-user": {"single_user": True},
    "single-user-dual": {"single_user": True, "dual_passwords": True},
    "same-user": {"extra_secret_fields": SAME_USER},
}


def labels_of(world: World, version: str) -> list[str]:
    return sorted(stages(world.client, world.app_arn).get(version, []))


def version_with(world: World, label: str) -> str | None:
    return next((v for v, found in stages(world.client, world.app_arn).items() if label in found), None)


class Operator:
    """Runs the steps (the function) and the CLI (the operator) against one world, keeping
    everything either printed for the final leak check (capsys: the CLI reads it too)."""

    def __init__(self, world: World, cli: Cli, capsys: pytest.CaptureFixture[str]) -> None:
        self.world = world
        self._cli = cli
        self._capsys = capsys
        self.function_output = ""
        self.cli_output = ""

    def step(self, token: str, name: str) -> dict[str, Any]:
        assert self.world.invoke is not None
        try:
            result: dict[str, Any] = self.world.invoke(event(self.world.app_arn, token, name))
        finally:
            self.function_output += self._capsys.readouterr().out
        return result

    def abandon(self, after: str) -> str:
        """A rotation whose steps ran up to ``after`` (included), then nothing: Secrets Manager gave up."""
        token = begin_rotation(self.world.client, self.world.app_arn)
        for name in ("createSecret", "setSecret", "testSecret")[
            : ("createSecret", "setSecret", "testSecret").index(after) + 1
        ]:
            self.step(token, name)
        return token

    def rotate(self) -> list[str]:
        token = begin_rotation(self.world.client, self.world.app_arn)
        return [
            self.step(token, name)["outcome"] for name in ("createSecret", "setSecret", "testSecret", "finishSecret")
        ]

    def fix(self, *args: str) -> CliRun:
        self.function_output += self._capsys.readouterr().out
        run = self._cli("fix", self.world.app_arn, "--force", "--json", *args)
        self.cli_output += run.text
        return run

    def assert_no_password(self) -> None:
        self.function_output += self._capsys.readouterr().out
        text = self.function_output + self.cli_output
        assert '"step done"' in self.function_output, "the function's log was not captured"
        assert [p for p in self.world.all_passwords() if p in text] == []


@pytest.fixture
def operator(
    world_factory: Callable[..., World], db_cli: Cli, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Operator]:
    def build(mode: str) -> Operator:
        return Operator(world_factory(**MODES[mode]), db_cli, capsys)

    return build


@pytest.fixture
def login_limit_1(db: DatabaseServer) -> Iterator[Callable[[World], None]]:
    """A failed-login limit of 1 on the application user: MySQL FAILED_LOGIN_ATTEMPTS 1 (with a
    lock time), MariaDB max_password_errors = 1 (global; restored after the case)."""

    def apply(world: World) -> None:
        if db.family == "mysql":
            db.sql("ALTER USER %s@'%%' FAILED_LOGIN_ATTEMPTS 1 PASSWORD_LOCK_TIME 1", (world.app_user,))
        else:
            db.sql("SET GLOBAL max_password_errors = 1")

    yield apply
    if db.family == "mariadb":
        db.sql("SET GLOBAL max_password_errors = DEFAULT")
        db.sql("FLUSH PRIVILEGES")  # lifts any block a failing case left


# -- single user without dual passwords: the database holds the pending password -----------


@pytest.mark.parametrize("limit", [False, True], ids=["no-limit", "limit-1"])
def test_fix_finishes_an_abandoned_single_user_rotation_forward(
    operator: Callable[..., Operator], login_limit_1: Callable[[World], None], limit: bool
) -> None:
    """setSecret changed the password, the rotation was abandoned: AWSCURRENT is refused and only the
    pending version's password works. fix --dry-run says it will finish forward and changes nothing;
    fix moves AWSCURRENT to the pending version (ROTATOR_TESTED first, AWSPENDING off) after one login;
    applications log in again and the next rotation completes. With a failed-login limit of 1 the
    account is never locked: fix tried the likely password first."""
    op = operator("single-user")
    world = op.world
    if limit:
        login_limit_1(world)
    old_version = version_with(world, "AWSCURRENT")
    token = op.abandon("setSecret")
    pending = world.app_secret("AWSPENDING")
    if not limit:  # (with the limit, proving it would lock the account)
        assert not world.logs_in(world.app_secret()), "AWSCURRENT should be refused: the lock-out fix repairs"

    dry = op.fix("--dry-run")
    assert dry.code == 0, dry.text
    plan = dry.json()["plan"]
    assert plan["action"] == "finish" and plan["logins"] == 1
    assert "the pending version's password logs in" in plan["reason"]
    assert labels_of(world, token) == ["AWSPENDING", "ROTATOR_SETTING"]

    done = op.fix("--yes")
    assert done.code == 0, done.text
    assert done.json()["action"] == "finished: moved AWSCURRENT"
    assert labels_of(world, token) == ["AWSCURRENT", "ROTATOR_SETTING", "ROTATOR_TESTED"]
    assert version_with(world, "AWSPREVIOUS") == old_version and version_with(world, "AWSPENDING") is None
    assert world.app_secret() == pending and world.can_use_grants(world.app_secret())

    changed = "password-changed" if world.server.family == "mariadb" else "password-changed-without-dual"
    assert op.rotate()[1:] == [changed, "login-ok", "promoted"]
    assert world.can_use_grants(world.app_secret())
    op.assert_no_password()


@pytest.mark.parametrize(("mode", "logins"), [("single-user", 1), ("alternating", 1), ("same-user", 0)])
def test_fix_clears_a_rotation_abandoned_before_its_password_change(
    operator: Callable[..., Operator], mode: str, logins: int
) -> None:
    """Abandoned after createSecret: setSecret never began (no ROTATOR_SETTING on the version), so
    AWSCURRENT is tried first and logs in (the admin's hashes say so for the same user, no login):
    fix removes AWSPENDING, and the next rotation completes."""
    op = operator(mode)
    token = op.abandon("createSecret")
    run = op.fix("--yes")
    assert run.code == 0, run.text
    assert run.json()["plan"]["action"] == "clear" and run.json()["plan"]["logins"] == logins
    assert labels_of(op.world, token) == []
    assert op.rotate()[-1] == "promoted"
    op.assert_no_password()


def test_fix_clears_an_abandoned_alternating_rotation(operator: Callable[..., Operator]) -> None:
    """Alternating users: setSecret only changed the twin, AWSCURRENT's user still logs in: clear, and
    the next rotation syncs the twin again."""
    op = operator("alternating")
    token = op.abandon("setSecret")
    run = op.fix("--yes")
    assert run.code == 0, run.text
    assert run.json()["plan"] == {
        "action": "clear",
        "reason": "AWSCURRENT ('app') logs in; setSecret only ever changes the other user ('app_clone'), so the "
        "label can go",
        "logins": 1,
    }
    assert labels_of(op.world, token) == []
    assert op.world.can_use_grants(op.world.app_secret())
    assert op.rotate() == ["created", "twin-synced", "twin-verified", "promoted"]
    op.assert_no_password()


def test_fix_does_nothing_when_no_password_logs_in(operator: Callable[..., Operator], db: DatabaseServer) -> None:
    """Neither AWSCURRENT's nor the pending version's password is the database's (changed behind the
    secret's back): fix says so, exit 1, and leaves the labels as they are."""
    op = operator("single-user")
    token = op.abandon("setSecret")
    db.sql("ALTER USER 'app'@'%' IDENTIFIED BY 'changed-by-someone-else-1'")
    run = op.fix("--yes")
    assert run.code == 1
    assert run.json()["plan"]["action"] == "nothing"
    assert "neither AWSCURRENT's nor the pending version's password logs in" in run.json()["message"]
    assert labels_of(op.world, token) == ["AWSPENDING", "ROTATOR_SETTING"]
    op.assert_no_password()


# -- the same user set by the admin: the stored hashes say, no login at all -------------------


def test_fix_reads_the_admins_hashes_for_a_same_user_secret(
    operator: Callable[..., Operator], db: DatabaseServer
) -> None:
    """The same user set by the admin, abandoned after setSecret: fix asks the admin, who reads the
    account's stored hashes (no login as the user). MariaDB (no dual passwords): only the pending
    password is the account's: finish. MySQL: AWSCURRENT's is kept as the secondary: clear."""
    op = operator("same-user")
    world = op.world
    token = op.abandon("setSecret")
    run = op.fix("--yes")
    assert run.code == 0, run.text
    plan = run.json()["plan"]
    assert plan["logins"] == 0 and "stored hashes" in plan["reason"]
    if db.family == "mysql":
        assert plan["action"] == "clear" and "as the secondary password" in plan["reason"]
        assert "AWSPENDING" not in labels_of(world, token)
    else:
        assert plan["action"] == "finish"
        assert "AWSCURRENT" in labels_of(world, token)
    assert world.can_use_grants(world.app_secret())
    assert op.rotate()[-1] == "promoted"
    op.assert_no_password()


# -- dual passwords: both log in; clear, and the next rotation keeps AWSCURRENT working -------


@only_on("mysql", "dual passwords are MySQL 8.0.14+")
@pytest.mark.parametrize("mode", ["single-user-dual", "same-user"])
def test_after_fix_the_next_dual_password_rotation_has_no_window(
    operator: Callable[..., Operator], capsys: pytest.CaptureFixture[str], mode: str
) -> None:
    """An abandoned dual-password setSecret leaves the pending password primary and AWSCURRENT's the
    secondary; fix clears AWSPENDING (AWSCURRENT logs in). The next rotation finds the abandoned
    version's password (ROTATOR_SETTING still on it), replaces it without RETAIN — so AWSCURRENT's
    stays the secondary: it logs in after setSecret — reports it (AbandonedRotationRecovered) and
    completes; both AWSCURRENT and AWSPREVIOUS log in at the end."""
    op = operator(mode)
    world = op.world
    original = world.app_secret()
    abandoned = op.abandon("setSecret")
    run = op.fix("--yes")
    assert run.code == 0 and run.json()["plan"]["action"] == "clear", run.text
    assert labels_of(world, abandoned) == ["ROTATOR_SETTING"]

    token = begin_rotation(world.client, world.app_arn)
    op.step(token, "createSecret")
    set_result = op.step(token, "setSecret")
    assert set_result["notices"] == ["abandoned-rotation-password"]
    assert world.logs_in(original), "AWSCURRENT stopped working in the middle of the rotation (a window)"
    assert op.step(token, "testSecret")["outcome"] == "login-ok-both"
    assert op.step(token, "finishSecret")["outcome"] == "promoted"
    assert world.logs_in(world.app_secret()) and world.logs_in(original)
    emitted = Emitted.parse(op.function_output)
    assert emitted.metric("AbandonedRotationRecovered", Step="setSecret") == [1.0]
    op.assert_no_password()
