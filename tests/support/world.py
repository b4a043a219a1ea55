"""A database with an admin and an application user, and their secrets in
(moto's) Secrets Manager: the starting point of every rotation test, the demo,
the benchmarks and the soak. MySQL/MariaDB and PostgreSQL (:func:`make_world` picks by
the server's family; PostgreSQL's world is :class:`PgWorld`).
"""

from __future__ import annotations

import json
import re
import secrets
import ssl
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pymysql
from botocore.exceptions import ClientError

from tests.support.aws import begin_rotation, create_secret, event, secret_value
from tests.support.servers import DatabaseServer

# What a single user needs to keep its current password as the secondary one (MySQL).
KEEPS_CURRENT_PASSWORD = "GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO {account}"
DEFAULT_APP_GRANTS = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON `appdb`.* TO {account}",
    "GRANT SELECT ON `reports`.`summary` TO {account}",
)


def new_password() -> str:
    return "pw-" + secrets.token_urlsafe(18)


def made_accounts(server: DatabaseServer) -> list[tuple[str, str, bool]]:
    """Every account and role but the server's own: (user, host, is_role)."""
    # MariaDB lists roles in mysql.user (is_role); MySQL's roles are plain accounts at '%'.
    is_role = "is_role = 'Y'" if server.family == "mariadb" else "FALSE"
    rows = server.sql(f"SELECT User, Host, {is_role} FROM mysql.user")
    return sorted((str(user), str(host), bool(role)) for user, host, role in rows if user not in server.system_users)


def reset_server(server: DatabaseServer) -> None:
    """Drop every user, role and database a test made (the family's own accounts stay)."""
    if server.family == "postgresql":
        server.reset()  # type: ignore[attr-defined]
        return
    for user, host, is_role in made_accounts(server):
        if is_role:
            server.sql("DROP ROLE IF EXISTS `{}`".format(user.replace("`", "``")))
        else:
            server.sql("DROP USER IF EXISTS %s@%s", (user, host))
    for (name,) in server.sql("SHOW DATABASES"):
        if name not in server.system_schemas:
            server.sql("DROP DATABASE `{}`".format(name.replace("`", "``")))


# PostgreSQL: every made role's pg_authid row (attributes, SCRAM verifier, VALID UNTIL),
# memberships, per-role settings, and every ACL that names a made role, in each database.
_PG_ROLES = "SELECT oid FROM pg_roles WHERE rolname !~ '^pg_' AND rolname <> current_user"
_PG_SNAPSHOT = (
    f"SELECT row_to_json(a)::text FROM pg_authid a WHERE oid IN ({_PG_ROLES}) ORDER BY rolname",
    "SELECT pg_get_userbyid(roleid)::text, pg_get_userbyid(member)::text, admin_option FROM pg_auth_members "
    f"WHERE member IN ({_PG_ROLES}) ORDER BY 1, 2",
    f"SELECT setdatabase, pg_get_userbyid(setrole)::text, setconfig::text FROM pg_db_role_setting "
    f"WHERE setrole IN ({_PG_ROLES}) ORDER BY 1, 2",
    "SELECT datname::text, datacl::text FROM pg_database ORDER BY 1",
)
_PG_DATABASE_SNAPSHOT = (
    "SELECT nspname::text, nspacl::text FROM pg_namespace ORDER BY 1",
    "SELECT oid::regclass::text, relacl::text, pg_get_userbyid(relowner)::text FROM pg_class "
    "WHERE relnamespace::regnamespace::text NOT IN ('pg_catalog', 'information_schema', 'pg_toast') ORDER BY 1",
    "SELECT defaclrole, defaclnamespace, defaclobjtype::text, defaclacl::text FROM pg_default_acl ORDER BY 1, 2, 3",
)


def pg_accounts_snapshot(server: DatabaseServer) -> list[Any]:
    """PostgreSQL's equivalent: every role a test made with its password verifier, attributes,
    memberships and settings, and every ACL and owner in each database: any change shows."""
    snapshot: list[Any] = [server.sql(query) for query in _PG_SNAPSHOT]
    for (database,) in server.sql("SELECT datname::text FROM pg_database WHERE datallowconn ORDER BY 1"):
        snapshot += [server.sql(query, database=database) for query in _PG_DATABASE_SNAPSHOT]  # type: ignore[call-arg]
    return snapshot


def accounts_snapshot(server: DatabaseServer) -> list[Any]:
    """Every account's SHOW CREATE USER (password hash, lock, expiry, limits) and SHOW GRANTS:
    any change to an account shows up here."""
    if server.family == "postgresql":
        return pg_accounts_snapshot(server)
    snapshot: list[Any] = []
    for user, host, is_role in made_accounts(server):
        if is_role:  # a MariaDB role: no host, no CREATE USER
            snapshot.append((user, host, [], server.sql("SHOW GRANTS FOR `{}`".format(user.replace("`", "``")))))
        else:
            created = server.sql("SHOW CREATE USER %s@%s", (user, host))
            snapshot.append((user, host, created, server.sql("SHOW GRANTS FOR %s@%s", (user, host))))
    return snapshot


# The password hash in SHOW CREATE USER: MariaDB "PASSWORD '*...'", MySQL "AS 0x..." (printed as hex).
_HASH = re.compile(
    r"(IDENTIFIED (?:BY PASSWORD|VIA \w+ USING|WITH '?\w+'? AS)) (?:0x[0-9A-Fa-f]*|'(?:[^'\\]|\\.|'')*')"
)


def created_as(server: DatabaseServer, user: str, host: str) -> str:
    """SHOW CREATE USER with the user name and password hash masked."""
    connection = server.root()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW CREATE USER %s@%s", (user, host))
            (text,) = cursor.fetchone() or ("",)
    finally:
        connection.close()
    return _HASH.sub(r"\1 <hash>", str(text).replace(f"`{user}`", "`USER`").replace(f"'{user}'", "'USER'"))


@dataclass
class World:
    server: DatabaseServer
    client: Any
    admin_arn: str
    app_arn: str
    app_user: str
    admin_user: str
    invoke: Callable[[dict[str, Any]], Any] | None = None
    passwords_seen: set[str] = field(default_factory=set, repr=False)  # a failing test prints the World
    ca_file: Path | None = None  # defaults to the server's own CA

    # -- secrets ---------------------------------------------------------------

    def app_secret(self, stage: str = "AWSCURRENT") -> dict[str, Any]:
        value = secret_value(self.client, self.app_arn, stage)
        self.passwords_seen.add(value["password"])
        return value

    def admin_secret(self) -> dict[str, Any]:
        return secret_value(self.client, self.admin_arn)

    def all_passwords(self) -> set[str]:
        """Every password any version of the app or admin secret has held."""
        found = set(self.passwords_seen)
        for arn in (self.app_arn, self.admin_arn):
            for version in self.client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]:
                try:
                    value = self.client.get_secret_value(SecretId=arn, VersionId=version["VersionId"])
                except ClientError:  # a version without a value has no password
                    continue
                password = json.loads(value["SecretString"]).get("password")
                if password:
                    found.add(password)
        return found

    # -- rotations -------------------------------------------------------------

    def rotate(self, token: str | None = None, steps: Sequence[str] | None = None) -> list[Any]:
        assert self.invoke is not None, "World.invoke is not wired"
        token = begin_rotation(self.client, self.app_arn, token)
        return [
            self.invoke(event(self.app_arn, token, step))
            for step in (steps or ("createSecret", "setSecret", "testSecret", "finishSecret"))
        ]

    # -- the database as the application sees it -----------------------------

    def connect(self, value: dict[str, Any], **kwargs: Any) -> pymysql.connections.Connection[Any]:
        context = ssl.create_default_context(cafile=str(self.ca_file or self.server.pki.ca_file))
        return pymysql.connect(
            host=value["host"],
            port=int(value["port"]),
            user=value["username"],
            password=value["password"].encode("utf-8"),  # as rotator sends it (a str goes as latin-1)
            database=value.get("dbname"),
            ssl=context,
            autocommit=True,
            connect_timeout=5,
            **kwargs,
        )

    def logs_in(self, value: dict[str, Any]) -> bool:
        """Whether ``value``'s credentials log in (a refusal counts towards failed-login limits)."""
        try:
            self.connect(value).close()
        except pymysql.err.OperationalError:
            return False
        return True

    def can_use_grants(self, value: dict[str, Any]) -> bool:
        """Log in with ``value`` and exercise the default application grants."""
        connection = self.connect(value)
        try:
            with connection.cursor() as cursor:
                cursor.execute("INSERT INTO appdb.items (note) VALUES (%s)", (value["username"],))
                cursor.execute("SELECT COUNT(*) FROM appdb.items")
                cursor.execute("SELECT total FROM reports.summary")
            return True
        finally:
            connection.close()

    def grants(self, user: str, host: str = "%") -> list[str]:
        rows = self.server.sql("SHOW GRANTS FOR %s@%s", (user, host))
        # The USAGE line carries the password hash; drop the IDENTIFIED BY part.
        return sorted(str(row[0]).split(" IDENTIFIED BY")[0].replace(f"`{user}`", "`USER`") for row in rows)

    def account(self, user: str) -> dict[str, list[str]]:
        """Per host of ``user``: its SHOW CREATE USER (name and password hash masked) and SHOW
        GRANTS, as the server itself prints them: two accounts with equal results are copies."""
        hosts = sorted(str(host) for (host,) in self.server.sql("SELECT Host FROM mysql.user WHERE User = %s", (user,)))
        return {host: [created_as(self.server, user, host), *self.grants(user, host)] for host in hosts}


def make_world(
    server: DatabaseServer,
    client: Any,
    *,
    app_user: str = "app",
    admin_user: str = "admin",
    hosts: Sequence[str] = ("%",),
    app_grants: Sequence[str] = DEFAULT_APP_GRANTS,
    single_user: bool = False,
    dual_passwords: bool = False,
    extra_secret_fields: dict[str, Any] | None = None,
    admin_grants: Sequence[str] = ("GRANT ALL PRIVILEGES ON *.* TO {account} WITH GRANT OPTION",),
    name_prefix: str = "",
) -> World:
    """Users, schemas and secrets for one rotation scenario. ``dual_passwords``: the
    application user may keep its current password while changing it (MySQL's
    APPLICATION_PASSWORD_ADMIN), as docs/design.md recommends for single user.
    A PostgreSQL server gets :func:`make_pg_world` (``hosts``, ``app_grants``,
    ``dual_passwords`` and ``admin_grants`` are MySQL's and ignored there)."""
    if server.family == "postgresql":
        return make_pg_world(
            server,
            client,
            app_user=app_user,
            admin_user=admin_user,
            single_user=single_user,
            extra_secret_fields=extra_secret_fields,
            name_prefix=name_prefix,
        )
    if dual_passwords and server.family == "mysql":
        app_grants = (*app_grants, KEEPS_CURRENT_PASSWORD)
    server.sql("CREATE DATABASE IF NOT EXISTS appdb")
    server.sql("CREATE TABLE IF NOT EXISTS appdb.items (id INT AUTO_INCREMENT PRIMARY KEY, note VARCHAR(200))")
    server.sql("CREATE DATABASE IF NOT EXISTS reports")
    server.sql("CREATE TABLE IF NOT EXISTS reports.summary (total INT)")

    admin_password = new_password()
    server.sql("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (admin_user, admin_password))
    for grant in admin_grants:
        server.sql(grant.format(account="%s@'%%'"), (admin_user,))

    app_password = new_password()
    for host in hosts:
        server.sql("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (app_user, host, app_password))
        for grant in app_grants:
            server.sql(grant.format(account="%s@%s"), (app_user, host))

    base = {"engine": server.family, "host": server.host, "port": server.port}
    admin_arn = create_secret(
        client, f"{name_prefix}rds-admin", {**base, "username": admin_user, "password": admin_password}
    )
    app_value: dict[str, Any] = {**base, "username": app_user, "password": app_password, "dbname": "appdb"}
    if not single_user:
        app_value["masterarn"] = admin_arn
    app_value.update(extra_secret_fields or {})
    app_arn = create_secret(client, f"{name_prefix}app-db", app_value)
    return World(
        server=server,
        client=client,
        admin_arn=admin_arn,
        app_arn=app_arn,
        app_user=app_user,
        admin_user=admin_user,
        passwords_seen={admin_password, app_password},
    )


# -- PostgreSQL ---------------------------------------------------------------------------

PG_DATABASE = "appdb"
PG_SCHEMA = "app"


class PgWorld(World):
    """The same world on PostgreSQL: an Aurora-like master user (CREATEROLE, rds_superuser,
    no superuser) as the admin, and the application user in the owner-role design
    (docs/postgresql.md, "Ownership"): ``<user>_owner`` NOLOGIN holds the privileges,
    the user is a member with the setting ``role = <user>_owner``."""

    owner: str = ""

    def connect(self, value: dict[str, Any], **kwargs: Any) -> Any:
        from tests.support.postgresql import connect

        session = connect(
            self.server,  # type: ignore[arg-type]
            value["username"],
            value["password"],
            database=value.get("dbname") or "postgres",
            **kwargs,
        )
        session.autocommit = True
        return session

    def logs_in(self, value: dict[str, Any]) -> bool:
        import pg8000.dbapi

        try:
            self.connect(value).close()
        except (pg8000.dbapi.DatabaseError, pg8000.dbapi.InterfaceError):
            return False
        return True

    def can_use_grants(self, value: dict[str, Any]) -> bool:
        session = self.connect(value)
        try:
            cursor = session.cursor()
            cursor.execute(f"INSERT INTO {PG_SCHEMA}.items (note) VALUES (%s)", (value["username"],))
            cursor.execute(f"SELECT count(*) FROM {PG_SCHEMA}.items")
            return True
        finally:
            session.close()

    def grants(self, user: str, host: str = "%") -> list[str]:
        """What ``user`` holds as the server prints it: memberships (with
        ADMIN OPTION), settings, and the ACL entries naming it on the database, the schema
        and the relations of appdb — a test's own reading, not the backend's, as the
        suite's superuser (whatever the admin secret holds)."""
        oid = f"(SELECT oid FROM pg_roles WHERE rolname = '{user}')"
        found = [
            f"member of {role} admin={admin}"
            for role, admin in self._root_sql(
                f"SELECT pg_get_userbyid(roleid)::text, admin_option FROM pg_auth_members WHERE member = {oid}"
            )
        ]
        found += [
            f"setting {row[0]}"
            for row in self._root_sql(f"SELECT setconfig::text FROM pg_db_role_setting WHERE setrole = {oid}")
        ]
        acls = (
            ("pg_database", "datname::text", "datacl"),
            ("pg_namespace", "nspname::text", "nspacl"),
            ("pg_class", "oid::regclass::text", "relacl"),
        )
        for catalogue, name, acl in acls:
            found += [
                f"{object_name}: {privilege}{' WITH GRANT OPTION' if grantable else ''}"
                for object_name, privilege, grantable in self._root_sql(
                    f"SELECT {name}, a.privilege_type::text, a.is_grantable FROM {catalogue}, aclexplode({acl}) a "
                    f"WHERE a.grantee = {oid}",
                    PG_DATABASE,
                )
            ]
        return sorted(found)  # the grantee is the query's, never in a line: nothing to mask

    def _root_sql(self, statement: str, database: str | None = None) -> list[tuple[Any, ...]]:
        return self.server.sql(statement, database=database or "postgres")  # type: ignore[call-arg]

    def master_sql(self, statement: str, database: str | None = None) -> list[tuple[Any, ...]]:
        """One statement as the admin (the master user)."""
        value = {**self.admin_secret(), "dbname": database or "postgres"}
        session = self.connect(value)
        try:
            cursor = session.cursor()
            cursor.execute(statement)
            return [tuple(row) for row in cursor.fetchall()] if cursor.description else []
        finally:
            session.close()


def make_pg_world(
    server: DatabaseServer,
    client: Any,
    *,
    app_user: str = "app",
    admin_user: str = "master",
    single_user: bool = False,
    owner_role: bool = True,
    extra_secret_fields: dict[str, Any] | None = None,
    name_prefix: str = "",
) -> PgWorld:
    """The PostgreSQL world: database ``appdb`` with schema ``app`` and table ``app.items``
    (the master's), the user with CONNECT on the database; with ``owner_role`` (the design
    rotator's alternating users need) its privileges go to ``<user>_owner`` and the user
    runs as it, else to the user itself (a database as AWS's function leaves it: adoption
    brings it to the design)."""
    from tests.support.postgresql import PostgreSQLServer, password_literal, quote_ident

    assert isinstance(server, PostgreSQLServer)
    admin_password, app_password = new_password(), new_password()
    server.rds_master(admin_user, admin_password)
    base = {"engine": "postgres", "host": server.host, "port": server.port}
    admin_arn = create_secret(
        client, f"{name_prefix}rds-admin", {**base, "username": admin_user, "password": admin_password}
    )
    app_value: dict[str, Any] = {**base, "username": app_user, "password": app_password, "dbname": PG_DATABASE}
    if not single_user:
        app_value["masterarn"] = admin_arn
    app_value.update(extra_secret_fields or {})
    app_arn = create_secret(client, f"{name_prefix}app-db", app_value)
    world = PgWorld(
        server=server,
        client=client,
        admin_arn=admin_arn,
        app_arn=app_arn,
        app_user=app_user,
        admin_user=admin_user,
        passwords_seen={admin_password, app_password},
        ca_file=None,
    )
    user, owner = quote_ident(app_user), quote_ident(f"{app_user}_owner")
    holder = owner if owner_role else user
    # The master makes everything, as on Aurora: on 16+ it then holds ADMIN OPTION on the
    # roles it created, which granting them to a twin needs.
    world.master_sql(f"CREATE DATABASE {PG_DATABASE}")
    world.master_sql(f"CREATE ROLE {user} LOGIN PASSWORD {password_literal(app_password)}")
    world.master_sql(f"GRANT CONNECT ON DATABASE {PG_DATABASE} TO {user}")
    if owner_role:
        world.owner = f"{app_user}_owner"
        options = " WITH INHERIT TRUE, SET TRUE, ADMIN FALSE" if server.server_version_num >= 160000 else ""
        world.master_sql(f"CREATE ROLE {owner} NOLOGIN")
        world.master_sql(f"GRANT CONNECT, TEMPORARY ON DATABASE {PG_DATABASE} TO {owner}")
        world.master_sql(f"GRANT {owner} TO {user}{options}")
        world.master_sql(f"ALTER ROLE {user} SET role = '{world.owner}'")
    for statement in (
        f"CREATE SCHEMA {PG_SCHEMA}",
        f"CREATE TABLE {PG_SCHEMA}.items (id bigserial PRIMARY KEY, note text)",
        f"GRANT USAGE, CREATE ON SCHEMA {PG_SCHEMA} TO {holder}",
        f"GRANT SELECT, INSERT, UPDATE, DELETE ON {PG_SCHEMA}.items TO {holder}",
        f"GRANT USAGE ON SEQUENCE {PG_SCHEMA}.items_id_seq TO {holder}",
    ):
        world.master_sql(statement, PG_DATABASE)
    return world
