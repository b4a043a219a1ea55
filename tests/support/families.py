"""The server families the integration suite runs on, and what differs between them
for the *tests* (rotator's own dialects live in src/rotator).

Every integration test that uses a database runs once per family; its id names the
server's version (``mariadb-10.11.19``, ``mysql-9.7.4``). A case that exercises one
family's feature says so with :func:`only_on`; a case that fails on one family
because of a known bug in rotator carries :func:`fails_on` (strict xfail), so the
suite turns red the moment the fix lands and the mark can go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import cache, partial
from pathlib import Path

import pymysql
import pytest

from tests.support import mariadb, mysql, postgresql
from tests.support.servers import FAMILIES, POSTGRESQL, DatabaseServer, LocalServer, Pki

__all__ = ["FAMILIES", "POSTGRESQL", "fails_on", "only_on"]

# A parametrisation's name ("mysql", "postgresql15") -> the server class that starts one.
SERVER_CLASSES: dict[str, Callable[..., LocalServer]] = {
    "mariadb": mariadb.MariaDBServer,
    "mysql": mysql.MySQLServer,
    **{f"postgresql{major}": partial(postgresql.PostgreSQLServer, major=major) for major in postgresql.MAJORS},
}


def server_name(server: DatabaseServer) -> str:
    """The parametrisation's name of a running server: its family, or ``postgresql15``."""
    return str(getattr(server, "name", server.family))


def family_of(name: str) -> str:
    """The SQL family of a parametrisation's server: ``postgresql15`` -> ``postgresql``."""
    return "postgresql" if name in POSTGRESQL else name


def fails_on(family: str, reason: str) -> pytest.MarkDecorator:
    """Strict xfail for ``family``'s run of the case only (the other family must pass)."""
    return pytest.mark.fails_on(family, reason=reason)


def only_on(family: str, reason: str) -> pytest.MarkDecorator:
    """The case exercises ``family``'s own feature: the other family's run is skipped."""
    return pytest.mark.only_on(family, reason=reason)


def apply_family_marks(item: pytest.Item) -> None:
    """Turn fails_on/only_on into xfail/skip for the item's own family (conftest hook).
    A mark names a family ("postgresql": every version) or one server ("postgresql18")."""
    callspec = getattr(item, "callspec", None)
    name = callspec.params.get("database_server") if callspec else None
    if not isinstance(name, str):
        return
    names = {name, family_of(name)}
    for mark in item.iter_markers("fails_on"):
        if mark.args[0] in names:
            item.add_marker(pytest.mark.xfail(strict=True, reason=mark.kwargs["reason"]))
    for mark in item.iter_markers("only_on"):
        if mark.args[0] not in names:
            item.add_marker(pytest.mark.skip(reason=f"{mark.args[0]} only: {mark.kwargs['reason']}"))


@cache
def version(family: str) -> str | None:
    """The version a session's server of ``family`` runs, known before it starts (None: not installed yet)."""
    if family == "mysql" and mysql.external_dsn():
        with mysql.ExternalMySQL(mysql.external_dsn() or "") as server:
            return server.version
    if family in POSTGRESQL:
        return postgresql.binary_version(int(family.removeprefix("postgresql")))
    return {"mariadb": mariadb.binary_version, "mysql": mysql.binary_version}[family]()


def family_id(family: str) -> str:
    """The test id of a family's run: ``mysql-9.7.4``."""
    found = version(family)
    return f"{family}-{found}" if found else family


def describe(family: str) -> str:
    """One line for pytest's header: which server, from where. Never a password."""
    found = version(family) or "(not installed yet: installed when first needed)"
    if family == "mysql" and mysql.external_dsn():
        server = mysql.ExternalMySQL(mysql.external_dsn() or "")
        return f"mysql {found}: {mysql.DSN_VARIABLE} ({server.host}:{server.port}), not started by the suite"
    if family == "mysql":
        return f"mysql {found}: private servers from the Debian sid chroot {mysql.CHROOT}"
    if family in POSTGRESQL:
        installation = postgresql.INSTALLATIONS[int(family.removeprefix("postgresql"))]
        where = f"the Debian sid chroot {installation.root}" if installation.root else installation.bindir
        return f"{family} {found}: private servers from {where}"
    return f"mariadb {found}: private servers from {mariadb.MARIADBD}"


def ensure_installed(family: str) -> None:
    if family == "mariadb":
        mariadb.ensure_binaries()
    elif family in POSTGRESQL:
        postgresql.ensure_installed()
    elif not mysql.external_dsn():
        mysql.ensure_chroot()


@contextmanager
def session_server(family: str, base_dir: Path) -> Iterator[DatabaseServer]:
    """The family's server for a whole session: private, or the one ROTATOR_MYSQL_DSN names."""
    dsn = mysql.external_dsn() if family == "mysql" else None
    if dsn:
        with mysql.ExternalMySQL(dsn) as external:
            yield external
        return
    with private_server(family, base_dir) as server:
        yield server


@contextmanager
def private_server(
    family: str, base_dir: Path, *, extra_config: str = "", tls: bool = True, pki: Pki | None = None
) -> Iterator[LocalServer]:
    """A new private server of ``family``: skipped (with why) where the suite cannot start
    one (MySQL given by ROTATOR_MYSQL_DSN: no chroot is built)."""
    if family == "mysql" and mysql.external_dsn():
        pytest.skip(f"needs a private MySQL server; {mysql.DSN_VARIABLE} points the suite at a server it cannot start")
    ensure_installed(family)
    server = SERVER_CLASSES[family](base_dir, extra_config=extra_config, tls=tls)
    if pki is not None:
        server.pki = pki
    with server:
        yield server


def require_control(server: DatabaseServer) -> None:
    """Skip a case that crashes, stops or freezes the server when the suite did not start it."""
    if not server.controllable:
        pytest.skip(f"crashes or restarts the server; {mysql.DSN_VARIABLE} names a server the suite did not start")


# -- test data in each family's SQL ----------------------------------------------------


def set_password(server: DatabaseServer, user: str, password: str) -> None:
    """Root changes ``user``'s password behind rotator's back, in the family's SQL
    (PostgreSQL: a SCRAM verifier, so the statement holds no password)."""
    if family_of(server_name(server)) == "postgresql":
        server.sql(f"ALTER ROLE {postgresql.quote_ident(user)} PASSWORD {postgresql.password_literal(password)}")
    else:
        server.sql("ALTER USER %s@'%%' IDENTIFIED BY %s", (user, password))


def account_exists(server: DatabaseServer, user: str) -> bool:
    """Whether ``user`` has an account (MySQL: at any host) or is a role (PostgreSQL)."""
    if family_of(server_name(server)) == "postgresql":
        return bool(server.sql("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)))
    return bool(server.sql("SELECT COUNT(*) FROM mysql.user WHERE User = %s", (user,))[0][0])


def set_default_role(server: DatabaseServer, role: str, user: str, host: str = "%") -> None:
    """``SET DEFAULT ROLE`` in the family's syntax (MariaDB: ``FOR``, MySQL: ``TO``).
    A role named without a host is the same on both: MySQL reads it as ``role@'%'``."""
    preposition = "FOR" if server.family == "mariadb" else "TO"
    server.sql(f"SET DEFAULT ROLE `{role}` {preposition} %s@%s", (user, host))


def role_grants(server: DatabaseServer, user: str, host: str = "%") -> list[tuple[str, bool]]:
    """The roles granted to an account, each with its ADMIN OPTION."""
    if server.family == "mariadb":
        rows = server.sql(
            "SELECT Role, Admin_option FROM mysql.roles_mapping WHERE User = %s AND Host = %s", (user, host)
        )
    else:
        rows = server.sql(
            "SELECT FROM_USER, WITH_ADMIN_OPTION FROM mysql.role_edges WHERE TO_USER = %s AND TO_HOST = %s",
            (user, host),
        )
    return sorted((str(role), flag == "Y") for role, flag in rows)


def default_roles(server: DatabaseServer, user: str, host: str = "%") -> list[str]:
    if server.family == "mariadb":
        rows = server.sql("SELECT default_role FROM mysql.user WHERE User = %s AND Host = %s", (user, host))
        return sorted(str(role) for (role,) in rows if role)
    rows = server.sql("SELECT DEFAULT_ROLE_USER FROM mysql.default_roles WHERE USER = %s AND HOST = %s", (user, host))
    return sorted(str(role) for (role,) in rows)


def max_user_length(server: DatabaseServer) -> int:
    """The longest user name the server accepts (MariaDB 10.11: 128, MySQL 8+: 32)."""
    (length,) = server.sql(
        "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
        "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'"
    )[0]
    return int(length)


# A plugin with no password at all, per family.
NO_PASSWORD_PLUGIN = {"mariadb": ("unix_socket", ""), "mysql": ("auth_socket", "auth_socket.so")}


def install_plugin(db: DatabaseServer, plugin: str, library: str) -> None:
    """Load an authentication plugin the family ships (skipped where the server will not)."""
    if not library or db.sql("SELECT COUNT(*) FROM information_schema.PLUGINS WHERE PLUGIN_NAME = %s", (plugin,))[0][0]:
        return
    statement = (
        f"INSTALL SONAME '{library}'" if db.family == "mariadb" else f"INSTALL PLUGIN {plugin} SONAME '{library}'"
    )
    try:
        db.sql(statement)
    except pymysql.err.MySQLError as exc:
        pytest.skip(f"cannot load {plugin}: {exc}")


def socket_host(db: DatabaseServer) -> str:
    """The user also exists at 'localhost', authenticated by the operating system (no password)."""
    plugin, library = NO_PASSWORD_PLUGIN[db.family]
    install_plugin(db, plugin, library)
    db.sql(f"CREATE USER 'app'@'localhost' IDENTIFIED {'VIA' if db.family == 'mariadb' else 'WITH'} {plugin}")
    return plugin


def account_tables_reader(server: DatabaseServer) -> tuple[str, ...]:
    """Grants (``{account}`` to format) for an admin that reads the account tables one by one
    and can grant the default world's privileges, but may not read the mysql schema as a
    whole: enough for catalogue rows about itself, not for another account's
    ``SHOW CREATE USER`` (nor, on MariaDB, ``SHOW GRANTS``) or information_schema rows."""
    # Every table rotator's dialect reads (MariaDB: global_priv; MySQL: global_grants) is readable.
    own = (
        ("roles_mapping", "global_priv")
        if server.family == "mariadb"
        else ("role_edges", "default_roles", "global_grants")
    )
    tables = ("user", "db", "tables_priv", "columns_priv", "procs_priv", "proxies_priv", *own)
    return (
        "GRANT CREATE USER ON *.* TO {account}",
        *(f"GRANT SELECT ON `mysql`.`{table}` TO {{account}}" for table in tables),
        "GRANT ALL PRIVILEGES ON `appdb`.* TO {account} WITH GRANT OPTION",
        "GRANT ALL PRIVILEGES ON `reports`.* TO {account} WITH GRANT OPTION",
    )
