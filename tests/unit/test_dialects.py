"""Each server family's dialect: capabilities from the version, every operation in the family's
syntax, and statements that no user, host, role, schema, table or column name can break."""

from __future__ import annotations

from collections import Counter
from decimal import Decimal
from typing import Any

import pymysql
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from rotator.accounts import (
    GRANT_OPTION,
    Account,
    AccountPolicy,
    AccountProfile,
    AddRestriction,
    ChangeOwnPassword,
    CreateUser,
    GrantPrivilege,
    GrantProxy,
    GrantRole,
    Operation,
    Privilege,
    ProxyGrant,
    RemoveRestriction,
    RequireTls,
    RevokeAdminOption,
    RevokePrivilege,
    RoleGrant,
    SetAttributes,
    SetDefaultRoles,
    SetLimits,
    SetPassword,
    SetPasswordPolicy,
    TlsRequirement,
    sync_operations,
)
from rotator.backends.mysql.base import Session, _connect_error
from rotator.backends.mysql.dialects import Dialect, MariaDB, MySQL, dialect_for
from rotator.errors import (
    AccountLockedError,
    DatabaseAuthError,
    DatabaseError,
    PasswordExpiredError,
    StatementBuildError,
    UnsupportedDatabaseError,
)
from rotator.ports import ServerInfo
from rotator.sql import Statement, keyword, quote_identifier

TWIN = Account("app_clone", "10.%")
WHO = ("app_clone", "10.%")


def server(flavor: str, version: tuple[int, int, int]) -> ServerInfo:
    text = ".".join(map(str, version)) + ("-MariaDB" if flavor == "mariadb" else "")
    return ServerInfo(flavor, version, text, False, ("db", 3306, 1))


MARIADB = dialect_for(server("mariadb", (10, 11, 6)), "arn:secret")
MYSQL = dialect_for(server("mysql", (8, 0, 36)), "arn:secret")


def sqls(dialect: Dialect, op: Operation) -> list[tuple[str, tuple[Any, ...]]]:
    return [(statement.sql, statement.params) for statement in dialect.render(op)]


# -- choosing a dialect --------------------------------------------------------------------


def test_the_dialect_and_its_capabilities_come_from_the_server_version() -> None:
    """MariaDB and MySQL 8 get their own dialect; capabilities follow MySQL's release gates."""
    assert isinstance(MARIADB, MariaDB) and isinstance(MYSQL, MySQL)
    assert not MARIADB.features.supports_dual_password and not MARIADB.features.roles_have_hosts
    assert MYSQL.features.supports_dual_password and MYSQL.features.has_partial_revokes
    early = dialect_for(server("mysql", (8, 0, 12)), "arn:secret").features
    assert not early.supports_password_require_current and not early.supports_dual_password
    assert not early.has_partial_revokes and not early.has_failed_login_lock


@pytest.mark.parametrize(("flavor", "version"), [("mysql", (5, 7, 44)), ("mariadb", (10, 3, 39))])
def test_servers_older_than_supported_are_a_typed_refusal(flavor: str, version: tuple[int, int, int]) -> None:
    """MySQL before 8.0 and MariaDB before 10.4 are refused, naming the version."""
    with pytest.raises(UnsupportedDatabaseError, match="older than rotator supports"):
        dialect_for(server(flavor, version), "arn:secret")


# -- each family's syntax ---------------------------------------------------------------


def test_privileges_render_alike_on_both_families() -> None:
    """Grant option, column and routine privileges each get their own syntax, bound to the twin account."""
    for dialect in (MARIADB, MYSQL):
        assert sqls(dialect, GrantPrivilege(TWIN, Privilege(GRANT_OPTION, "appdb"))) == [
            ("GRANT USAGE ON `appdb`.* TO %s@%s WITH GRANT OPTION", WHO)
        ]
        assert sqls(dialect, GrantPrivilege(TWIN, Privilege("SELECT", "appdb", "t", "c`1"))) == [
            ("GRANT SELECT (`c``1`) ON `appdb`.`t` TO %s@%s", WHO)
        ]
        assert sqls(dialect, RevokePrivilege(TWIN, Privilege("EXECUTE", "appdb", "proc", "", "PROCEDURE"))) == [
            ("REVOKE EXECUTE ON PROCEDURE `appdb`.`proc` FROM %s@%s", WHO)
        ]


def test_wildcard_schema_names_keep_their_pattern() -> None:
    """``app\\_%`` is written back as the same pattern, its % escaped for the driver."""
    [(sql, _params)] = sqls(MYSQL, GrantPrivilege(TWIN, Privilege("SELECT", "app\\_%")))
    assert sql == "GRANT SELECT ON `app\\_%%`.* TO %s@%s"
    assert sql % ("'a'", "'h'") == "GRANT SELECT ON `app\\_%`.* TO 'a'@'h'"


def test_dynamic_privileges_carry_their_own_grant_option_on_mysql_only() -> None:
    """MySQL grants XA_RECOVER_ADMIN WITH GRANT OPTION; MariaDB has no dynamic privileges to render."""
    dynamic = Privilege("XA_RECOVER_ADMIN", dynamic=True, grantable=True)
    assert sqls(MYSQL, GrantPrivilege(TWIN, dynamic)) == [
        ("GRANT XA_RECOVER_ADMIN ON *.* TO %s@%s WITH GRANT OPTION", WHO)
    ]
    with pytest.raises(StatementBuildError, match="no dynamic privilege"):
        MARIADB.render(GrantPrivilege(TWIN, dynamic))


def test_roles_in_each_family_s_syntax() -> None:
    """MySQL roles are `role`@`host` (its % escaped), default roles take TO and several roles, and
    an admin option is removed by revoking and re-granting; MariaDB uses FOR and REVOKE ADMIN OPTION."""
    role = RoleGrant("AWS_LOAD_S3_ACCESS", "%", True)
    assert sqls(MYSQL, GrantRole(TWIN, role)) == [("GRANT `AWS_LOAD_S3_ACCESS`@`%%` TO %s@%s WITH ADMIN OPTION", WHO)]
    assert sqls(MYSQL, SetDefaultRoles(TWIN, (("a", "%"), ("b", "%")))) == [
        ("SET DEFAULT ROLE `a`@`%%`, `b`@`%%` TO %s@%s", WHO)
    ]
    assert sqls(MYSQL, RevokeAdminOption(TWIN, RoleGrant("r", "%"))) == [
        ("REVOKE `r`@`%%` FROM %s@%s", WHO),
        ("GRANT `r`@`%%` TO %s@%s", WHO),
    ]
    assert sqls(MARIADB, GrantRole(TWIN, RoleGrant("reader"))) == [("GRANT `reader` TO %s@%s", WHO)]
    assert sqls(MARIADB, SetDefaultRoles(TWIN, (("reader", ""),))) == [("SET DEFAULT ROLE `reader` FOR %s@%s", WHO)]
    assert sqls(MARIADB, SetDefaultRoles(TWIN, ())) == [("SET DEFAULT ROLE NONE FOR %s@%s", WHO)]
    assert sqls(MARIADB, RevokeAdminOption(TWIN, RoleGrant("r"))) == [("REVOKE ADMIN OPTION FOR `r` FROM %s@%s", WHO)]
    with pytest.raises(StatementBuildError, match="one default role"):
        MARIADB.render(SetDefaultRoles(TWIN, (("a", ""), ("b", ""))))


def test_the_twin_gets_the_user_s_plugin() -> None:
    """CREATE USER / ALTER USER name the source's plugin in each family's syntax, the password bound."""
    assert sqls(MYSQL, CreateUser(TWIN, "pw", "mysql_native_password")) == [
        ("CREATE USER %s@%s IDENTIFIED WITH mysql_native_password BY %s", (*WHO, "pw"))
    ]
    assert sqls(MYSQL, SetPassword(TWIN, "pw", "caching_sha2_password")) == [
        ("ALTER USER %s@%s IDENTIFIED WITH caching_sha2_password BY %s", (*WHO, "pw"))
    ]
    assert sqls(MARIADB, CreateUser(TWIN, "pw", "mysql_native_password")) == [
        ("CREATE USER %s@%s IDENTIFIED BY %s", (*WHO, "pw"))
    ]
    assert sqls(MARIADB, SetPassword(TWIN, "pw", "ed25519")) == [
        ("ALTER USER %s@%s IDENTIFIED VIA ed25519 USING PASSWORD(%s)", (*WHO, "pw"))
    ]


def test_own_password_names_the_current_one_where_the_server_can_require_it() -> None:
    """MySQL 8.0.13+ answers PASSWORD REQUIRE CURRENT with REPLACE; MariaDB uses SET PASSWORD."""
    assert sqls(MYSQL, ChangeOwnPassword("new", "old")) == [
        ("ALTER USER USER() IDENTIFIED BY %s REPLACE %s", ("new", "old"))
    ]
    early = dialect_for(server("mysql", (8, 0, 12)), "arn:secret")
    assert sqls(early, ChangeOwnPassword("new", "old")) == [("ALTER USER USER() IDENTIFIED BY %s", ("new",))]
    assert sqls(MARIADB, ChangeOwnPassword("new", "old")) == [("SET PASSWORD = PASSWORD(%s)", ("new",))]


def test_dual_passwords_have_a_rendering_where_the_server_has_them() -> None:
    """RETAIN CURRENT PASSWORD renders on MySQL 8.0.14+; the admin's change also marks the account
    with the secret version in the same statement (8.0.21+ attributes); refused elsewhere."""
    assert sqls(MYSQL, SetPassword(TWIN, "pw", "caching_sha2_password", retain_current=True, version="v-2")) == [
        (
            "ALTER USER %s@%s IDENTIFIED BY %s RETAIN CURRENT PASSWORD ATTRIBUTE %s",
            (*WHO, "pw", '{"rotator_password_version": "v-2"}'),
        )
    ]
    assert sqls(MYSQL, ChangeOwnPassword("new", "old", retain_current=True)) == [
        ("ALTER USER USER() IDENTIFIED BY %s REPLACE %s RETAIN CURRENT PASSWORD", ("new", "old"))
    ]
    for dialect in (MARIADB, dialect_for(server("mysql", (8, 0, 13)), "arn:secret")):
        with pytest.raises(StatementBuildError, match="no dual passwords"):
            dialect.render(SetPassword(TWIN, "pw", retain_current=True))
    # 8.0.14-8.0.20: its own password can keep the old one (REPLACE makes a retry safe), the
    # admin's change cannot (no attribute to mark it): refused, so the caller falls back.
    unmarked = dialect_for(server("mysql", (8, 0, 20)), "arn:secret")
    assert not unmarked.admin_dual_passwords().available and unmarked.admin_dual_passwords().server_has_them
    with pytest.raises(StatementBuildError, match="no account attributes"):
        unmarked.render(SetPassword(TWIN, "pw", retain_current=True, version="v-2"))
    assert MYSQL.admin_dual_passwords().available and not MARIADB.admin_dual_passwords().server_has_them


def test_partial_revokes_tls_limits_proxies() -> None:
    """Partial revokes are a schema REVOKE / GRANT (MySQL only); TLS values, limits and proxied accounts are bound."""
    assert sqls(MYSQL, AddRestriction(TWIN, Privilege("SELECT", "mysql"))) == [
        ("REVOKE SELECT ON `mysql`.* FROM %s@%s", WHO)
    ]
    assert sqls(MYSQL, RemoveRestriction(TWIN, Privilege("SELECT", "mysql"))) == [
        ("GRANT SELECT ON `mysql`.* TO %s@%s", WHO)
    ]
    with pytest.raises(StatementBuildError, match="no partial revokes"):
        MARIADB.render(AddRestriction(TWIN, Privilege("SELECT", "mysql")))
    tls = TlsRequirement("SPECIFIED", cipher="AES", subject="/CN=app")
    assert sqls(MARIADB, RequireTls(TWIN, tls)) == [
        ("ALTER USER %s@%s REQUIRE SUBJECT %s AND CIPHER %s", (*WHO, "/CN=app", "AES"))
    ]
    assert sqls(MYSQL, RequireTls(TWIN, TlsRequirement())) == [("ALTER USER %s@%s REQUIRE NONE", WHO)]
    limits = (("MAX_QUERIES_PER_HOUR", 10), ("MAX_STATEMENT_TIME", Decimal("2.5")))
    assert sqls(MARIADB, SetLimits(TWIN, limits)) == [
        ("ALTER USER %s@%s WITH MAX_QUERIES_PER_HOUR %s MAX_STATEMENT_TIME %s", (*WHO, 10, Decimal("2.5")))
    ]
    with pytest.raises(StatementBuildError, match="no resource limit MAX_STATEMENT_TIME"):
        MYSQL.render(SetLimits(TWIN, limits))
    assert sqls(MYSQL, GrantProxy(TWIN, ProxyGrant("base", "%", True))) == [
        ("GRANT PROXY ON %s@%s TO %s@%s WITH GRANT OPTION", ("base", "%", *WHO))
    ]


def test_password_policies_in_each_family() -> None:
    """MySQL sets every password and login policy in one ALTER USER; MariaDB has only the expiry."""
    policy = AccountPolicy(30, 4, 10, True, 3, -1, '{"team":"x"}')
    [(sql, params)] = sqls(MYSQL, SetPasswordPolicy(TWIN, policy))
    assert sql == (
        "ALTER USER %s@%s PASSWORD EXPIRE INTERVAL %s DAY PASSWORD HISTORY %s PASSWORD REUSE INTERVAL %s DAY "
        "PASSWORD REQUIRE CURRENT FAILED_LOGIN_ATTEMPTS %s PASSWORD_LOCK_TIME UNBOUNDED"
    )
    assert params == (*WHO, 30, 4, 10, 3)
    assert sqls(MYSQL, SetPasswordPolicy(TWIN, AccountPolicy()))[0][0] == (
        "ALTER USER %s@%s PASSWORD EXPIRE DEFAULT PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL DEFAULT "
        "PASSWORD REQUIRE CURRENT DEFAULT FAILED_LOGIN_ATTEMPTS %s PASSWORD_LOCK_TIME %s"
    )
    assert sqls(MYSQL, SetAttributes(TWIN, '{"a":null}')) == [("ALTER USER %s@%s ATTRIBUTE %s", (*WHO, '{"a":null}'))]
    assert sqls(MARIADB, SetPasswordPolicy(TWIN, AccountPolicy(password_lifetime=0))) == [
        ("ALTER USER %s@%s PASSWORD EXPIRE NEVER", WHO)
    ]
    with pytest.raises(StatementBuildError, match="MariaDB has no password history"):
        MARIADB.render(SetPasswordPolicy(TWIN, policy))


# -- what cannot be copied ----------------------------------------------------------------


def test_copy_problems_name_what_a_twin_cannot_be_given() -> None:
    """A plugin without a password, a plugin chain, and a privilege keyword that is not one are named; a
    normal profile has no problem."""
    normal = AccountProfile(privileges=frozenset({Privilege("SELECT", "a`%b")}), plugin="caching_sha2_password")
    assert MYSQL.copy_problems(normal) == []
    assert "authentication plugin auth_socket" in MYSQL.copy_problems(AccountProfile(plugin="auth_socket"))[0]
    chain = MARIADB.copy_problems(AccountProfile(plugin="unix_socket OR mysql_native_password"))
    assert any("unix_socket OR mysql_native_password" in problem for problem in chain)
    odd = AccountProfile(privileges=frozenset({Privilege("SELECT; DROP")}), plugin="mysql_native_password")
    assert MARIADB.copy_problems(odd) == ["unexpected SQL keyword 'SELECT; DROP'"]


# -- names that cannot break a statement ----------------------------------------------------

HOSTILE = st.lists(
    st.sampled_from([*"%'`\"\\_ aZ0;-*@()\n", "é", "😀", "%%", "%s", "'@'"]), min_size=1, max_size=8
).map("".join)


def _tokens(sql: str) -> tuple[list[str], list[str]]:
    """The backtick identifiers and the quoted strings of ``sql``, unescaped as the server reads them."""
    identifiers: list[str] = []
    strings: list[str] = []
    i = 0
    while i < len(sql):
        quote = sql[i]
        if quote not in "`'":
            i += 1
            continue
        value, i = [], i + 1
        while True:
            char = sql[i]
            if quote == "'" and char == "\\":
                value.append(_UNESCAPE.get(sql[i + 1], sql[i + 1]))
                i += 2
            elif char == quote and sql[i + 1 : i + 2] == quote:
                value.append(quote)
                i += 2
            elif char == quote:
                i += 1
                break
            else:
                value.append(char)
                i += 1
        (identifiers if quote == "`" else strings).append("".join(value))
    return identifiers, strings


_UNESCAPE = {"0": "\x00", "n": "\n", "r": "\r", "Z": "\x1a"}


def _formatted(statement: Statement) -> str:
    """The text PyMySQL sends: the template formatted with the (escaped) parameters."""
    return statement.sql % tuple(pymysql.converters.escape_item(p, "utf8mb4") for p in statement.params)


@settings(max_examples=150, deadline=None)
@given(user=HOSTILE, host=HOSTILE, role=HOSTILE, schema=HOSTILE, table=HOSTILE, column=HOSTILE)
def test_no_name_breaks_a_statement(user: str, host: str, role: str, schema: str, table: str, column: str) -> None:
    """Whatever the names hold (%, quotes, backticks, backslashes, %s), every statement of a full copy
    formats with its parameters, and each quoted identifier and string reads back as a name it came from."""
    account = Account(user, host)
    profile = AccountProfile(
        privileges=frozenset({Privilege("SELECT", schema, table, column), Privilege("INSERT", schema)}),
        roles=frozenset({RoleGrant(role, host, True)}),
        default_roles=frozenset({(role, host)}),
        proxies=frozenset({ProxyGrant(user, host)}),
        restrictions=frozenset({Privilege("INSERT", schema)}),
    )
    for dialect in (MYSQL, MARIADB):
        ops = [op for op in sync_operations(profile, AccountProfile(), account) if not isinstance(op, AddRestriction)]
        if dialect is MYSQL:
            ops += [AddRestriction(account, Privilege("INSERT", schema)), SetPassword(account, "p%s'", "x")]
        for op in ops:
            for statement in dialect.render(op):
                sent = _formatted(statement)
                identifiers, strings = _tokens(sent)
                assert set(identifiers) <= {schema, table, column, role, host}, (statement, sent)
                assert set(strings) <= {user, host, "p%s'"}, (statement, sent)


def test_a_template_that_does_not_format_is_refused_when_built() -> None:
    """A literal % that was not doubled is caught where the statement is built, not by the driver."""
    with pytest.raises(StatementBuildError, match="malformed"):
        Statement("GRANT SELECT ON `a%b`.* TO %s@%s", ("u", "h"), "grant")
    assert quote_identifier("we`ird%") == "`we``ird%%`"
    assert keyword("create temporary tables") == "CREATE TEMPORARY TABLES"
    with pytest.raises(StatementBuildError, match="unexpected SQL keyword"):
        keyword("SELECT; DROP TABLE x")
    with pytest.raises(StatementBuildError, match="NUL"):
        quote_identifier("a\x00b")


class _ExplodingCursor:
    def __enter__(self) -> _ExplodingCursor:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def execute(self, sql: str, params: object) -> None:
        raise UnicodeEncodeError("utf-8", "x", 0, 1, "surrogates not allowed")


class _Connection:
    def cursor(self) -> _ExplodingCursor:
        return _ExplodingCursor()


def test_a_non_driver_exception_while_executing_is_a_typed_error_naming_the_statement() -> None:
    """Anything but the server's answer (here an encoding error) becomes a DatabaseError naming the statement, not
    'unexpected ValueError', and no statement text."""
    session = Session.__new__(Session)
    session._connection = _Connection()  # type: ignore[assignment]
    session._secret_id, session._stats, session._dialect = "arn:secret", Counter(), None
    with pytest.raises(DatabaseError, match=r"grant SELECT ON `a` to 'u'@'h' could not be sent \(UnicodeEncodeError\)"):
        session.execute(Statement("GRANT SELECT ON `a`.* TO %s@%s", ("u", "h"), "grant SELECT ON `a` to 'u'@'h'"))


# -- account states at login --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "error", "words"),
    [
        (3118, AccountLockedError, "account is locked (error 3118); unlock it"),
        (4151, AccountLockedError, "account is locked (error 4151)"),
        (3955, AccountLockedError, "locked after failed logins (FAILED_LOGIN_ATTEMPTS)"),
        (4150, AccountLockedError, "locked after failed logins (max_password_errors)"),
        (1862, PasswordExpiredError, "password expired (error 1862); an administrator must set a new password"),
        (1820, PasswordExpiredError, "password expired (error 1820)"),
        (1045, DatabaseAuthError, "was refused by db:3306 (error 1045)"),
    ],
)
def test_locked_and_expired_logins_are_typed_errors_that_say_what_to_do(
    code: int, error: type[DatabaseAuthError], words: str
) -> None:
    """MySQL 3118/3955/1862, MariaDB 4151/4150 and 1820 say locked or expired and what to do; a wrong password
    stays a plain refusal."""
    problem = _connect_error(
        pymysql.err.OperationalError(code, "server text"), "arn:secret", "user 'app'", "db:3306", None
    )
    assert type(problem) is error and words in problem.problem
    assert "server text" not in problem.problem


class _Catalogue:
    """A runner that answers the account's own row but hides its privilege rows, as information_schema
    does from an admin without SELECT ON mysql.*."""

    secret_id = "arn:secret"

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]:
        if statement.label.startswith("read account"):
            # The account's own row, joined to no privilege, role or routine row (all NULL).
            names = MYSQL.account_row()[0]
            own = {"host": "%", "plugin": "caching_sha2_password", "User_attributes": "{}", "account_locked": "N"}
            values = [own.get(name, 0 if name.startswith("max_") else None) for name in names]
            return [(*values, None, None, None, None, None, None)]
        return []


def test_privilege_rows_hidden_from_the_admin_are_an_error_not_nothing() -> None:
    """An existing account with no USER_PRIVILEGES row at all: a typed error naming the view and the grant, never an
    empty profile to copy."""
    with pytest.raises(DatabaseError, match=r"no row of 'app'@'%' in information_schema.USER_PRIVILEGES"):
        MYSQL.read_profile(_Catalogue(), Account("app", "%"))


class GrantsRunner:
    """What SHOW GRANTS answers for the logged-in user (the only statement asked)."""

    secret_id = "arn:secret"

    def __init__(self, *grants: str) -> None:
        self.grants = grants
        self.asked: list[str] = []

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]:
        self.asked.append(statement.sql)
        return [(grant,) for grant in self.grants]


@pytest.mark.parametrize(
    ("grants", "available"),
    [
        (("GRANT USAGE ON *.* TO `app`@`%`",), False),
        (("GRANT USAGE ON *.* TO `app`@`%`", "GRANT APPLICATION_PASSWORD_ADMIN ON *.* TO `app`@`%`"), True),
        (("GRANT SELECT, CREATE USER ON *.* TO `app`@`%`",), True),
        (("GRANT ALL PRIVILEGES ON *.* TO `app`@`%` WITH GRANT OPTION",), True),
        # Granted on a schema, not globally: not the privilege the server checks.
        (("GRANT USAGE ON *.* TO `app`@`%`", "GRANT SELECT ON `APPLICATION_PASSWORD_ADMIN`.* TO `app`@`%`"), False),
        (("GRANT BACKUP_ADMIN,APPLICATION_PASSWORD_ADMIN ON *.* TO `app`@`%`",), True),
    ],
)
def test_own_dual_passwords_follow_the_users_global_grants(grants: tuple[str, ...], available: bool) -> None:
    """A user keeps its current password only with APPLICATION_PASSWORD_ADMIN (or CREATE USER) on *.*."""
    runner = GrantsRunner(*grants)
    dual = MYSQL.own_dual_passwords(runner)
    assert (dual.server_has_them, dual.available) == (True, available)
    assert runner.asked == ["SHOW GRANTS"]
    assert not available or "APPLICATION_PASSWORD_ADMIN" in dual.reason


def test_servers_without_dual_passwords_say_so_without_asking() -> None:
    for dialect in (MARIADB, dialect_for(server("mysql", (8, 0, 13)), "arn:secret")):
        runner = GrantsRunner("GRANT ALL PRIVILEGES ON *.* TO `app`@`%`")
        dual = dialect.own_dual_passwords(runner)
        assert not dual.server_has_them and not dual.available and "has no dual passwords" in dual.reason
        assert runner.asked == []
