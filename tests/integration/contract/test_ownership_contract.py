"""The SharedOwnership port (rotator.ports): the same cases against the fake server's model of
ownership (tests/fakes/database.py: ``FakeOwnership``, ``FakeOwningAdminSession``) and the
PostgreSQL backend's admin session on the suite's private PostgreSQL 15 (docs/postgresql.md,
"Ownership").

The unit cases of ``rotator check``'s ``db.ownership`` (tests/unit/test_core_readiness.py)
trust the fake on exactly what these cases show: which owner role a user creates as, how
many objects each login role owns itself, whether the twin is counted, what a dry run and an
applied adoption leave behind, and the typed error for a user that does not exist.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rotator.accounts import Privilege
from rotator.backends.postgresql.base import PostgreSQLBackend
from rotator.errors import SecretMismatchError
from rotator.ports import Database, SharedOwnership
from rotator.secret import DatabaseSecret
from rotator.settings import Settings
from tests.fakes.database import ALL_STATIC, FakeDatabase, FakeOwnership, FakeServer
from tests.support.postgresql import PostgreSQLServer, password_literal
from tests.support.world import PG_SCHEMA, make_pg_world, new_password

pytestmark = [pytest.mark.integration, pytest.mark.postgresql]

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:ownership-AbCdEf"
DESIGNS = ("owner-role", "own")  # the user creates as app_owner / as itself


@dataclass
class Kit:
    """One implementation of the port, its two secrets, and how the user creates objects."""

    port: Database
    admin: DatabaseSecret
    app: DatabaseSecret
    create: Callable[[int], None]  # the application user creates n tables
    make_twin: Callable[[], None]  # a login role app_clone (owning nothing)


def secret(value: dict[str, Any]) -> DatabaseSecret:
    return DatabaseSecret.parse(SECRET, json.dumps(value))


def fake_kit(design: str) -> Kit:
    server = FakeServer("mysql", port=3306)
    server.ownership = FakeOwnership({"app": "app_owner"} if design == "owner-role" else {})
    base = {"engine": "mysql", "host": "127.0.0.1", "port": 3306}
    admin_password, app_password = new_password(), new_password()
    server.create_user("admin", admin_password, privileges=[Privilege(name) for name in ALL_STATIC])
    server.create_user("app", app_password, privileges=[Privilege("SELECT", "appdb")])
    ownership = server.ownership
    return Kit(
        FakeDatabase(server),
        secret({**base, "username": "admin", "password": admin_password}),
        secret({**base, "username": "app", "password": app_password, "dbname": "appdb"}),
        lambda n: ownership.create("app", n),
        lambda: server.create_user("app_clone", new_password()) and None,
    )


def real_kit(pg: PostgreSQLServer, aws: Any, design: str) -> Kit:
    world = make_pg_world(pg, aws, owner_role=design == "owner-role")
    app_value = world.app_secret()

    def create(n: int) -> None:
        session = world.connect(app_value)
        try:
            for _ in range(n):
                session.cursor().execute(
                    f"CREATE TABLE {PG_SCHEMA}.t_{new_password()[3:12].lower().replace('-', '_')} (id int)"
                )
        finally:
            session.close()

    settings = dataclasses.replace(Settings.from_env({}), ca_bundle=pg.pki.ca_file, connect_timeout=2)
    return Kit(
        PostgreSQLBackend(settings),
        secret(world.admin_secret()),
        secret(app_value),
        create,
        lambda: world.master_sql(f"CREATE ROLE app_clone LOGIN PASSWORD {password_literal(new_password())}") and None,
    )


@pytest.fixture(params=[f"{kind}-{design}" for design in DESIGNS for kind in ("fake", "real")])
def kit(request: pytest.FixtureRequest) -> Iterator[Kit]:
    kind, design = str(request.param).split("-", 1)
    if kind == "fake":
        yield fake_kit(design)
        return
    pg: PostgreSQLServer = request.getfixturevalue("postgresql15")
    if not pg.running:
        pg.start()
    pg.reset()
    yield real_kit(pg, request.getfixturevalue("aws"), design)
    pg.reset()


def design_of(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["kit"]).split("-", 1)[1]


def test_the_session_has_the_port_and_reads_who_owns_what(kit: Kit, request: pytest.FixtureRequest) -> None:
    """In the owner-role design the user creates as app_owner and owns nothing itself; without it
    the user owns each table it made. The twin is counted once it exists, with what it owns."""
    kit.create(2)
    with kit.port.admin(kit.admin, kit.app) as session:
        assert isinstance(session, SharedOwnership)
        state = session.ownership("app", "app_clone")
    if design_of(request) == "owner-role":
        assert state == ("app_owner", (("app", 0),)) and not state.needs_adoption
    else:
        assert state == (None, (("app", 2),)) and state.needs_adoption
    kit.make_twin()
    with kit.port.admin(kit.admin, kit.app) as session:
        assert isinstance(session, SharedOwnership)
        assert session.ownership("app", "app_clone").owned_by_logins == (("app", state[1][0][1]), ("app_clone", 0))
        assert session.ownership("app", None).owned_by_logins == state.owned_by_logins


def test_adoption_dry_run_changes_nothing_and_apply_leaves_no_object_to_a_login(
    kit: Kit, request: pytest.FixtureRequest
) -> None:
    """The dry run returns the plan (owner role, REASSIGN OWNED of what the login owns, the role
    setting last, no password) and changes nothing; applied, the user creates as the owner role
    and owns nothing itself."""
    kit.create(2)
    with kit.port.admin(kit.admin, kit.app) as session:
        assert isinstance(session, SharedOwnership)
        before = session.ownership("app", None)
        plan = session.adopt("app", None, apply=False)
        assert session.ownership("app", None) == before
    assert plan.owner_role == "app_owner" and not plan.applied
    assert plan.statements[-1].endswith("ALTER ROLE \"app\" SET role = 'app_owner'")
    assert not any("PASSWORD" in line for line in plan.statements)
    moves = [line for line in plan.statements if 'REASSIGN OWNED BY "app" TO "app_owner"' in line]
    assert len(moves) == (1 if design_of(request) == "own" else 0)

    with kit.port.admin(kit.admin, kit.app) as session:
        assert isinstance(session, SharedOwnership)
        done = session.adopt("app", None, apply=True)
        after = session.ownership("app", None)
    assert done.applied and done.owner_role == "app_owner" and done.statements == plan.statements
    assert after == ("app_owner", (("app", 0),)) and not after.needs_adoption


def test_a_user_that_does_not_exist_is_a_secret_mismatch(kit: Kit) -> None:
    """Neither the reading nor the adoption invents a role: SecretMismatchError, nothing changed."""
    with kit.port.admin(kit.admin, kit.app) as session:
        assert isinstance(session, SharedOwnership)
        with pytest.raises(SecretMismatchError, match="'nobody' does not exist"):
            session.ownership("nobody", None)
        with pytest.raises(SecretMismatchError, match="'nobody' does not exist"):
            session.adopt("nobody", None, apply=False)
