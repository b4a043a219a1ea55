"""Every readiness finding (rotator.readiness), produced on the fakes: each case arranges the
one thing wrong (or right) and asserts the finding's id and level, and that no password
appears in any finding. A last case reads the finding ids out of the readiness rules (the
rotator.readiness package, findings, secret_checks, database_checks, preflight, and the
strategies' checks) and fails when one has no case here.
"""

from __future__ import annotations

import datetime
import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

import rotator
from rotator.accounts import GRANT_OPTION, SYSTEM_USER, Privilege, ProxyGrant
from rotator.ports import CURRENT, PREVIOUS
from rotator.readiness import Level, ReadinessCheck, ReadinessSweep, SecretReport
from tests.fakes.database import ALL_STATIC, FakeOwnership, FakeServer
from tests.fakes.world import FUNCTION_ARN, FakeWorld, make_world


@dataclass(frozen=True)
class Case:
    strategy: str
    family: str
    arrange: Callable[[FakeWorld], None]
    check: str
    level: Level
    options: tuple[tuple[str, object], ...] = ()


def nothing(world: FakeWorld) -> None:
    return None


def rotated(world: FakeWorld) -> None:
    world.rotate()


def admin_without(*names: str) -> Callable[[FakeWorld], None]:
    def arrange(world: FakeWorld) -> None:
        admin = world.server.account("admin")
        admin.profile = admin.profile._replace(
            privileges=frozenset(p for p in admin.profile.privileges if p.privilege not in names)
        )

    return arrange


def current_value(**changes: object) -> Callable[[FakeWorld], None]:
    def arrange(world: FakeWorld) -> None:
        value = {**world.value(), **changes}
        world.store.put_value(world.app_arn, {k: v for k, v in value.items() if v is not None}, [CURRENT])

    return arrange


def in_progress(world: FakeWorld) -> None:
    world.step(world.begin(), "createSecret")


def twin_expired(world: FakeWorld) -> None:
    world.rotate()
    world.server.account(world.value(PREVIOUS)["username"]).expired = True


def twin_drift(world: FakeWorld) -> None:
    world.rotate()
    world.server.grant(world.value(PREVIOUS)["username"], Privilege("DROP", "appdb"))


def user_gained(world: FakeWorld) -> None:
    world.rotate()
    world.server.grant(world.value()["username"], Privilege("DROP", "appdb"))


def foreign_twin(world: FakeWorld) -> None:
    world.server.create_user("app_clone", "pw-someone-elses-0001", privileges=[Privilege("SELECT", "other")])


def app_role(world: FakeWorld) -> None:
    world.server.create_role("reporting", [Privilege("SELECT", "reports")])
    world.server.grant_role("app", "reporting")


def app_plugin(world: FakeWorld) -> None:
    app = world.server.account("app")
    app.plugin = "auth_socket"
    app.profile = app.profile._replace(plugin="auth_socket")


def app_proxy(world: FakeWorld) -> None:
    app = world.server.account("app")
    app.profile = app.profile._replace(proxies=frozenset({ProxyGrant("reporter", "%")}))


def protected_twin(world: FakeWorld) -> None:
    world.server.create_user("app_clone", "pw-twin-0001", privileges=[Privilege(SYSTEM_USER, dynamic=True)])


def other_server(world: FakeWorld) -> None:
    elsewhere = FakeServer(world.server.family, port=3307, hostname="other-db")
    admin = world.store.value(world.admin_arn or "")
    elsewhere.create_user("admin", admin["password"], privileges=[Privilege(n) for n in ALL_STATIC])
    world.database._servers["127.0.0.1:3307"] = elsewhere
    world.store.put_value(world.admin_arn or "", {**admin, "port": 3307}, [CURRENT])


def hostless_admin(world: FakeWorld) -> None:
    admin = world.store.value(world.admin_arn or "")
    world.store.put_value(world.admin_arn or "", {"username": "admin", "password": admin["password"]}, [CURRENT])


def app_password_changed(world: FakeWorld) -> None:
    world.server.account("app").password = "pw-changed-by-someone-0001"


def admin_password_changed(world: FakeWorld) -> None:
    world.server.account("admin").password = "pw-changed-by-someone-0002"


def foreign_secondary_single(world: FakeWorld) -> None:
    world.rotate()
    world.server.account("app").secondary = "pw-someone-elses-0003"


def foreign_secondary_admin(world: FakeWorld) -> None:
    world.server.account("app").secondary = "pw-someone-elses-0004"


def limit(world: FakeWorld) -> None:
    world.server.set_policy("app", failed_login_attempts=3, password_lock_days=1)


def reader_admin(world: FakeWorld) -> None:
    admin = world.server.account("admin")
    admin.profile = admin.profile._replace(
        privileges=frozenset([Privilege("CREATE USER"), Privilege("SELECT", "mysql", "user")])
    )


def recent(world: FakeWorld) -> None:
    now = datetime.datetime.now(datetime.UTC)
    world.store.set_dates(world.app_arn, last_rotated=now, next_rotation=now + datetime.timedelta(days=20))


def denied(which: str, operation: str) -> Callable[[FakeWorld], None]:
    def arrange(world: FakeWorld) -> None:
        world.store.deny((world.app_arn if which == "app" else world.admin_arn) or "", operation)

    return arrange


def overdue(world: FakeWorld) -> None:
    now = datetime.datetime.now(datetime.UTC)
    world.store.set_dates(
        world.app_arn, last_rotated=now - datetime.timedelta(days=60), next_rotation=now - datetime.timedelta(days=30)
    )


def owns(creates_as: dict[str, str], *creators: str) -> Callable[[FakeWorld], None]:
    """A server where objects have owners (PostgreSQL's kind): ``creates_as`` the users'
    owner roles; each of ``creators`` has made two objects."""

    def arrange(world: FakeWorld) -> None:
        world.server.ownership = FakeOwnership(dict(creates_as))
        for creator in creators:
            world.server.ownership.create(creator, 2)

    return arrange


def owned_by_login(world: FakeWorld) -> None:
    """The user creates as its owner role now, but made three objects as itself before."""
    world.server.ownership = FakeOwnership({"app": "app_owner"}, owned={"app": 3})


CASES = {
    "secret-denied": Case("single", "mariadb", denied("app", "DescribeSecret"), "secret", Level.FAIL),
    "rotation.config-ok": Case("single", "mariadb", nothing, "rotation.config", Level.OK),
    "rotation.config-other-function": Case(
        "single", "mariadb", nothing, "rotation.config", Level.FAIL,
        (("function_arn", FUNCTION_ARN + "-other"), ("expect_rotation", True)),
    ),
    "rotation.state-ok": Case("single", "mariadb", nothing, "rotation.state", Level.OK),
    "rotation.state-in-progress": Case(
        "single", "mariadb", in_progress, "rotation.state", Level.WARN, (("stale_after", datetime.timedelta(3650)),)
    ),
    "rotation.state-stuck": Case(
        "single", "mariadb", in_progress, "rotation.state", Level.FAIL, (("stale_after", datetime.timedelta(0)),)
    ),
    "rotation.last-overdue": Case("single", "mariadb", overdue, "rotation.last", Level.FAIL),
    "rotation.last-no-date": Case("single", "mariadb", nothing, "rotation.last", Level.WARN),
    "rotation.last-ok": Case("single", "mariadb", recent, "rotation.last", Level.OK),
    "rotation.next-ok": Case("single", "mariadb", nothing, "rotation.next", Level.OK),
    "rotation.next-blocked": Case("single", "mariadb", in_progress, "rotation.next", Level.WARN),
    "secret.value-ok": Case("single", "mariadb", nothing, "secret.value", Level.OK),
    "secret.value-not-json": Case(
        "single", "mariadb", lambda w: w.store.put_value(w.app_arn, "not json", [CURRENT]), "secret.value", Level.FAIL
    ),
    "secret.engine": Case("single", "mariadb", current_value(engine=None), "secret.engine", Level.WARN),
    "secret.engine-without-backend": Case(
        "single", "mariadb", current_value(engine="postgres"), "secret.engine", Level.FAIL
    ),
    "secret.tls": Case("single", "mariadb", current_value(ssl=False), "secret.tls", Level.WARN),
    "secret.mode-window": Case("single", "mariadb", nothing, "secret.mode", Level.WARN),
    "secret.mode-dual": Case("dual", "mysql", nothing, "secret.mode", Level.OK),
    "admin.secret-ok": Case("alternating", "mariadb", nothing, "admin.secret", Level.OK),
    "admin.secret-denied": Case(
        "alternating", "mariadb", denied("admin", "GetSecretValue"), "admin.secret", Level.FAIL
    ),
    "admin.host-ok": Case("alternating", "mariadb", nothing, "admin.host", Level.OK),
    "admin.host-unconfirmed": Case("alternating", "mariadb", hostless_admin, "admin.host", Level.FAIL),
    "target.names-ok": Case("alternating", "mariadb", nothing, "target.names", Level.OK),
    "db.login-ok": Case("alternating", "mariadb", nothing, "db.login", Level.OK),
    "db.login-refused": Case("alternating", "mariadb", app_password_changed, "db.login", Level.FAIL),
    "db.reach": Case("single", "mysql", lambda w: setattr(w.server, "running", False), "db.reach", Level.FAIL),
    "db.tls": Case("single", "mysql", lambda w: setattr(w.server, "tls", False), "db.tls", Level.FAIL),
    "db.admin-login-ok": Case("alternating", "mysql", nothing, "db.admin-login", Level.OK),
    "db.admin-login-refused": Case("alternating", "mysql", admin_password_changed, "db.admin-login", Level.FAIL),
    "db.same-server": Case("alternating", "mysql", other_server, "db.same-server", Level.FAIL),
    "db.passwords-previous-ok": Case("dual", "mysql", rotated, "db.passwords", Level.OK),
    "db.passwords-previous-gone": Case("dual", "mysql", foreign_secondary_single, "db.passwords", Level.WARN),
    "db.passwords-admin-ok": Case("same-user", "mysql", nothing, "db.passwords", Level.OK),
    "db.passwords-admin-foreign": Case("same-user", "mysql", foreign_secondary_admin, "db.passwords", Level.WARN),
    "db.login-limit": Case("alternating", "mysql", limit, "db.login-limit", Level.WARN),
    "app.accounts-ok": Case("alternating", "mariadb", nothing, "app.accounts", Level.OK),
    "app.accounts-missing": Case(
        "alternating", "mariadb", lambda w: w.server.drop_user("app"), "app.accounts", Level.FAIL
    ),
    "admin.read-accounts": Case(
        "alternating", "mariadb", admin_without("SELECT"), "admin.read-accounts", Level.FAIL
    ),
    "admin.read-definitions-ok": Case("alternating", "mysql", nothing, "admin.read-definitions", Level.OK),
    "admin.read-definitions-denied": Case("alternating", "mysql", reader_admin, "admin.read-definitions", Level.FAIL),
    "target.accounts-ok": Case("alternating", "mysql", nothing, "target.accounts", Level.OK),
    "target.accounts-admin-like": Case(
        "alternating", "mysql", lambda w: w.server.grant("app", Privilege("CREATE USER")), "target.accounts", Level.FAIL
    ),
    "twin.expired": Case("alternating", "mysql", twin_expired, "twin.expired", Level.WARN),
    "twin.name-ok": Case("alternating", "mysql", nothing, "twin.name", Level.OK),
    "admin.grant-ok": Case("alternating", "mariadb", nothing, "admin.grant", Level.OK),
    "admin.grant-lacking": Case("alternating", "mariadb", admin_without(GRANT_OPTION), "admin.grant", Level.FAIL),
    "admin.roles-lacking": Case("alternating", "mariadb", app_role, "admin.roles", Level.FAIL),
    "admin.create-user-ok": Case("same-user", "mysql", nothing, "admin.create-user", Level.OK),
    "admin.create-user-lacking": Case(
        "alternating", "mysql", admin_without("CREATE USER", "INSERT"), "admin.create-user", Level.FAIL
    ),
    "app.copy-ok": Case("alternating", "mysql", nothing, "app.copy", Level.OK),
    "app.copy-plugin": Case("alternating", "mysql", app_plugin, "app.copy", Level.FAIL),
    "admin.proxy": Case("alternating", "mariadb", app_proxy, "admin.proxy", Level.FAIL),
    "admin.system-user": Case(
        "alternating", "mysql", lambda w: (admin_without(SYSTEM_USER)(w), protected_twin(w)), "admin.system-user",
        Level.FAIL,
    ),
    "twin.state-new": Case("alternating", "mariadb", nothing, "twin.state", Level.OK),
    "twin.state-matches": Case("alternating", "mariadb", rotated, "twin.state", Level.OK),
    "twin.state-behind": Case("alternating", "mariadb", user_gained, "twin.state", Level.WARN),
    "twin.takeover": Case("alternating", "mariadb", foreign_twin, "twin.takeover", Level.WARN),
    "twin.drift": Case("alternating", "mariadb", twin_drift, "twin.drift", Level.FAIL),
    "db.ownership-ok": Case(
        "alternating", "mysql", owns({"app": "app_owner", "app_clone": "app_owner"}, "app"), "db.ownership", Level.OK
    ),
    "db.ownership-no-owner-role": Case("alternating", "mysql", owns({}, "app"), "db.ownership", Level.WARN),
    "db.ownership-owned-by-login": Case("alternating", "mysql", owned_by_login, "db.ownership", Level.WARN),
    "database-skipped": Case("single", "mariadb", nothing, "database", Level.SKIP, (("database_checks", False),)),
}  # fmt: skip


def findings(report: SecretReport, check: str) -> list[Level]:
    return [finding.level for finding in report.findings if finding.check == check]


@pytest.mark.parametrize("name", list(CASES))
def test_each_finding_on_the_fakes(name: str) -> None:
    """The arranged world yields the finding at the level expected, and no finding quotes a password."""
    case = CASES[name]
    world = make_world(case.strategy, family=case.family)
    case.arrange(world)
    report = world.check(**dict(case.options))
    assert case.level in findings(report, case.check), [(f.check, f.level.value) for f in report.findings]
    text = json.dumps(report.as_dict())
    for password in world.passwords():
        assert password not in text


def test_the_twin_name_too_long_for_mysql() -> None:
    """A 27-character user on MySQL: its twin's 33 characters do not fit (32): twin.name fails."""
    world = make_world("alternating", family="mysql", app_user="a" * 27)
    assert Level.FAIL in findings(world.check(), "twin.name")


def test_roles_the_admin_may_grant() -> None:
    """The admin holds the user's role WITH ADMIN OPTION: admin.roles ok."""
    world = make_world("alternating", family="mariadb")
    app_role(world)
    world.server.grant_role("admin", "reporting", default=False, admin=True)
    assert findings(world.check(), "admin.roles") == [Level.OK]


def test_a_sweep_out_of_time_reports_every_secret_left_and_a_failing_check_as_an_error() -> None:
    """readiness.time for the secrets not reached; readiness.error for a check that raised."""
    world = make_world("single")
    check = ReadinessCheck(world.store, world.database)
    late = ReadinessSweep(check, world.store, [world.app_arn]).run(lambda report: None, seconds_left=lambda: 0.0)
    assert [f.check for f in late.reports[0].findings] == ["readiness.time"]
    world.faults.fail_next("Database.own_account", lambda name: ValueError("a bug in a check"))
    broken = ReadinessSweep(check, world.store, [world.app_arn]).run(lambda report: None)
    assert [(f.check, f.level) for f in broken.reports[0].findings] == [("readiness.error", Level.FAIL)]


COVERED_ELSEWHERE = {"readiness.error", "readiness.time", "twin.name", "admin.roles"}


# Where the readiness rules are written (rotator.readiness's docstring lists them by job).
READINESS_MODULES = ("findings.py", "secret_checks.py", "database_checks.py", "preflight.py", "strategies.py")


def readiness_source() -> str:
    core = Path(rotator.__file__).parent
    files = [*sorted((core / "readiness").glob("*.py")), *(core / name for name in READINESS_MODULES)]
    return "\n".join(path.read_text() for path in files)


def test_every_finding_id_of_rotator_readiness_has_a_case() -> None:
    """The finding ids written in the readiness rules, each produced by a case above."""
    source = readiness_source()
    ids = set(re.findall(r'Finding\(\s*"([a-z.-]+)"', source)) | set(
        re.findall(r'database_failure\("([a-z.-]+)"', source)
    )
    covered = {case.check for case in CASES.values()} | COVERED_ELSEWHERE
    assert ids, "no finding ids found: the pattern needs updating"
    assert ids - covered == set()
