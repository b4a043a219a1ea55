"""What every server family shares, and the hooks where they differ.

A dialect has three concerns, as Django's database backends do:

- :class:`Features`: named capabilities, derived once from the server's version;
  shared code asks ``dialect.features.supports_x`` and never compares vendor strings.
- rendering: :meth:`Dialect.render` turns one typed operation of
  :mod:`rotator.accounts` into the family's statements (every name quoted and every
  literal ``%`` escaped by :mod:`rotator.sql`).
- reading: :meth:`Dialect.read_profile` and friends ask the family's catalogue
  tables what an account holds, through a :class:`Runner` (the adapter's session).
"""

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, ClassVar, NamedTuple, Protocol

from rotator.accounts import (
    GRANT_OPTION,
    Account,
    AccountPolicy,
    AccountProfile,
    AccountState,
    AddRestriction,
    ChangeOwnPassword,
    CreateUser,
    DropUser,
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
    RevokeProxy,
    RevokeRole,
    RoleGrant,
    SetAttributes,
    SetDefaultRoles,
    SetLimits,
    SetPassword,
    SetPasswordPolicy,
    TlsRequirement,
    sync_operations,
)
from rotator.errors import DatabaseError, StatementBuildError
from rotator.ports import DualPasswords, LoginLimit, ServerInfo
from rotator.sql import Statement, keyword, plugin_name, quote_identifier

WHO = "%s@%s"


# What to do when a twin cannot be given what the account has (copy_problems): the
# account's own plugin or syntax, which no grant to the admin changes.
COPY_ADVICE = "rotate this account with single-user rotation (it keeps its own plugin and settings)"


class Runner(Protocol):
    """The adapter's session, as a dialect uses it to read the catalogue."""

    @property
    def secret_id(self) -> str: ...

    def execute(self, statement: Statement) -> list[tuple[Any, ...]]: ...


@dataclass(frozen=True)
class StoredPasswords:
    """An account's plugin and stored password hashes, as its admin reads them: compared
    with candidate passwords in the adapter (rotator.backends.mysql.hashes), never logged, never
    in a repr, never returned to the core."""

    plugin: str
    primary: str | None = field(repr=False)
    secondary: str | None = field(repr=False)  # MySQL's dual passwords: the retained one


class UserEntry(NamedTuple):
    """What one user name is on the server: the hosts of its login accounts, and whether it is a role."""

    hosts: tuple[str, ...]
    is_role: bool | None  # None: not known from the hosts' statement (Dialect.role_named asks)


class AccountRecord(NamedTuple):
    """One account as the admin reads it: what a twin copies, and its state (not copied)."""

    profile: AccountProfile
    state: AccountState


ROW_ALIAS = "u"
# The server's longest user name, a subquery of the admin session's first statement.
MAX_USERNAME_SQL = (
    "SELECT CHARACTER_MAXIMUM_LENGTH FROM information_schema.COLUMNS "
    "WHERE TABLE_SCHEMA = 'mysql' AND TABLE_NAME = 'user' AND COLUMN_NAME = 'User'"
)
PRIVILEGE_LEVELS = frozenset({"global", "schema", "table", "column", "dynamic"})


# A NamedTuple, like the values in rotator.accounts: cheaper to define at cold start.
class Features(NamedTuple):
    """Named capabilities of one server (family and version)."""

    family: str  # "mariadb" or "mysql": for messages and docs only
    roles_have_hosts: bool  # MySQL: a role is an account, `role`@`host`
    multiple_default_roles: bool  # MySQL: SET DEFAULT ROLE r1, r2 TO u; MariaDB: one, FOR u
    default_role_syntax: str  # the preposition of SET DEFAULT ROLE: "FOR" (MariaDB) or "TO" (MySQL)
    has_dynamic_privileges: bool  # MySQL 8: global privileges with their own grant option
    has_partial_revokes: bool  # MySQL 8.0.16+: REVOKE on a schema under a global grant
    has_revoke_admin_option: bool  # MariaDB's REVOKE ADMIN OPTION FOR; MySQL re-grants instead
    supports_password_require_current: bool  # MySQL 8.0.13+: PASSWORD REQUIRE CURRENT, REPLACE 'current'
    supports_dual_password: bool  # MySQL 8.0.14+: RETAIN CURRENT PASSWORD (issue 12)
    has_password_reuse_policy: bool  # MySQL 8: PASSWORD HISTORY / REUSE INTERVAL
    has_failed_login_lock: bool  # MySQL 8.0.19+: FAILED_LOGIN_ATTEMPTS / PASSWORD_LOCK_TIME
    has_account_attributes: bool  # MySQL 8.0.21+: ATTRIBUTE / COMMENT
    has_proxy_grants: bool
    password_plugins: frozenset[str]  # plugins rotator can give a password
    limit_options: tuple[str, ...]  # ALTER USER ... WITH options, in mysql.user's column order
    fallback_max_username_length: int  # when information_schema does not say


class Dialect:
    """Renders operations and reads accounts for one server; subclasses fill in the family."""

    family: ClassVar[str]

    def __init__(self, server: ServerInfo) -> None:
        self.server = server
        self.features = self.make_features(server.version)

    @classmethod
    def make_features(cls, version: tuple[int, int, int]) -> Features:
        raise NotImplementedError

    # -- rendering -------------------------------------------------------------------

    def render(self, op: Operation) -> list[Statement]:
        """The statements that carry out ``op`` on this family (StatementBuildError if it cannot)."""
        return self._renderers[type(op)](op)

    @property
    def _renderers(self) -> dict[type[Any], Callable[[Any], list[Statement]]]:
        return {
            CreateUser: lambda op: [self.create_user(op)],
            SetPassword: lambda op: [self.set_password(op)],
            ChangeOwnPassword: lambda op: [self.change_own_password(op)],
            DropUser: lambda op: [Statement(f"DROP USER {WHO}", who(op.account), f"drop user {op.account}")],
            GrantPrivilege: lambda op: [self.grant_privilege(op.account, op.privilege)],
            RevokePrivilege: lambda op: [self.revoke_privilege(op.account, op.privilege)],
            AddRestriction: lambda op: [self.restriction(op)],
            RemoveRestriction: lambda op: [self.restriction(op)],
            GrantRole: lambda op: [self.grant_role(op.account, op.role)],
            RevokeRole: lambda op: [self.revoke_role(op.account, op.role)],
            RevokeAdminOption: lambda op: self.revoke_admin_option(op.account, op.role),
            SetDefaultRoles: lambda op: [self.set_default_roles(op.account, op.roles)],
            GrantProxy: lambda op: [self.grant_proxy(op.account, op.proxy)],
            RevokeProxy: lambda op: [
                Statement(
                    f"REVOKE PROXY ON {WHO} FROM {WHO}",
                    (op.proxy.user, op.proxy.host, *who(op.account)),
                    f"revoke {op.proxy.describe()} from {op.account}",
                )
            ],
            RequireTls: lambda op: [self.require_tls(op.account, op.tls)],
            SetLimits: lambda op: [self.set_limits(op.account, op.limits)],
            SetPasswordPolicy: lambda op: [self.set_policy(op.account, op.policy)],
            SetAttributes: lambda op: [self.set_attributes(op.account, op.patch)],
        }

    def grant_role(self, account: Account, role: RoleGrant) -> Statement:
        suffix = " WITH ADMIN OPTION" if role.admin_option else ""
        return Statement(
            f"GRANT {self.role_sql(role)} TO {WHO}{suffix}", who(account), f"grant role {role.describe()} to {account}"
        )

    def grant_proxy(self, account: Account, proxy: ProxyGrant) -> Statement:
        suffix = " WITH GRANT OPTION" if proxy.grant_option else ""
        return Statement(
            f"GRANT PROXY ON {WHO} TO {WHO}{suffix}",
            (proxy.user, proxy.host, *who(account)),
            f"grant {proxy.describe()} to {account}",
        )

    def require_tls(self, account: Account, tls: TlsRequirement) -> Statement:
        clause, params = _require_clause(tls)
        return Statement(
            f"ALTER USER {WHO} REQUIRE {clause}", (*who(account), *params), f"set TLS requirement of {account}"
        )

    def on_clause(self, priv: Privilege) -> str:
        if not priv.schema:
            return "*.*"
        schema = quote_identifier(priv.schema)
        if not priv.table:
            return f"{schema}.*"
        target = f"{schema}.{quote_identifier(priv.table)}"
        return f"{keyword(priv.routine_type)} {target}" if priv.routine_type else target

    def privilege_sql(self, priv: Privilege) -> str:
        if priv.dynamic and not self.features.has_dynamic_privileges:
            raise StatementBuildError(f"{self.family} has no dynamic privilege {priv.privilege}")
        name = keyword(priv.privilege)
        return f"{name} ({quote_identifier(priv.column)})" if priv.column else name

    def grant_privilege(self, account: Account, priv: Privilege) -> Statement:
        if priv.privilege == GRANT_OPTION:
            sql = f"GRANT USAGE ON {self.on_clause(priv)} TO {WHO} WITH GRANT OPTION"
        else:
            grantable = " WITH GRANT OPTION" if priv.grantable else ""
            sql = f"GRANT {self.privilege_sql(priv)} ON {self.on_clause(priv)} TO {WHO}{grantable}"
        return Statement(sql, who(account), f"grant {priv.describe()} to {account}")

    def revoke_privilege(self, account: Account, priv: Privilege) -> Statement:
        name = GRANT_OPTION if priv.privilege == GRANT_OPTION else self.privilege_sql(priv)
        return Statement(
            f"REVOKE {name} ON {self.on_clause(priv)} FROM {WHO}",
            who(account),
            f"revoke {priv.describe()} from {account}",
        )

    def role_sql(self, role: RoleGrant) -> str:
        if self.features.roles_have_hosts:
            return f"{quote_identifier(role.role)}@{quote_identifier(role.role_host or '%')}"
        return quote_identifier(role.role)

    def revoke_role(self, account: Account, role: RoleGrant) -> Statement:
        return Statement(
            f"REVOKE {self.role_sql(role)} FROM {WHO}", who(account), f"revoke role {role.describe()} from {account}"
        )

    def revoke_admin_option(self, account: Account, role: RoleGrant) -> list[Statement]:
        raise NotImplementedError

    def set_default_roles(self, account: Account, roles: tuple[tuple[str, str], ...]) -> Statement:
        syntax = self.features.default_role_syntax
        if not roles:
            return Statement(f"SET DEFAULT ROLE NONE {syntax} {WHO}", who(account), f"clear default role of {account}")
        if len(roles) > 1 and not self.features.multiple_default_roles:
            raise StatementBuildError(f"{self.family} allows one default role, not {len(roles)}")
        names = ", ".join(self.role_sql(RoleGrant(role, host)) for role, host in roles)
        return Statement(f"SET DEFAULT ROLE {names} {syntax} {WHO}", who(account), f"set default role of {account}")

    def set_limits(self, account: Account, limits: tuple[tuple[str, Any], ...]) -> Statement:
        for name, _ in limits:
            if name not in self.features.limit_options:
                raise StatementBuildError(f"{self.family} has no resource limit {name}")
        options = " ".join(f"{keyword(name)} %s" for name, _ in limits)
        return Statement(
            f"ALTER USER {WHO} WITH {options}",
            (*who(account), *(value for _, value in limits)),
            f"set resource limits of {account}",
        )

    def identified(self, plugin: str) -> str:
        """``IDENTIFIED ...`` with the password as the next parameter, keeping ``plugin``."""
        raise NotImplementedError

    def create_user(self, op: CreateUser) -> Statement:
        return Statement(
            f"CREATE USER {WHO} {self.identified(op.plugin)}",
            (*who(op.account), op.password),
            f"create user {op.account}",
        )

    def set_password(self, op: SetPassword) -> Statement:
        if op.retain_current:
            raise StatementBuildError(f"{self.family} {self.server.version_string} has no dual passwords")
        return Statement(
            f"ALTER USER {WHO} {self.identified(op.plugin)}",
            (*who(op.account), op.password),
            f"set password of {op.account}",
        )

    def change_own_password(self, op: ChangeOwnPassword) -> Statement:
        raise NotImplementedError

    def restriction(self, op: AddRestriction | RemoveRestriction) -> Statement:
        raise StatementBuildError(f"{self.family} has no partial revokes")

    def set_policy(self, account: Account, policy: AccountPolicy) -> Statement:
        raise NotImplementedError

    def set_attributes(self, account: Account, patch: str) -> Statement:
        raise StatementBuildError(f"{self.family} has no account attributes")

    # -- dual passwords ----------------------------------------------------------------

    def own_dual_passwords(self, run: Runner) -> DualPasswords:
        """Whether the logged-in user may keep its current password while changing it."""
        return DualPasswords(False, False, f"{self.family} {self.server.version_string} has no dual passwords")

    def admin_dual_passwords(self) -> DualPasswords:
        """Whether the admin's change of another account's password can keep the old one
        (and mark the change, so that a retry converges)."""
        return DualPasswords(False, False, f"{self.family} {self.server.version_string} has no dual passwords")

    # -- passwords held and failed-login limits ----------------------------------------------

    def stored_passwords(self, run: Runner, account: Account) -> StoredPasswords | None:
        """The account's plugin and password hashes (None: no such account)."""
        raise NotImplementedError

    def login_limit(self, run: Runner, policy: AccountPolicy | None) -> LoginLimit:
        """The failed-login limit of an account: from its ``policy`` as the admin read it,
        or (None) as the logged-in user reads its own."""
        raise NotImplementedError

    # -- what cannot be copied -----------------------------------------------------------

    def copy_problems(self, profile: AccountProfile) -> list[str]:
        """What in ``profile`` this server's twin cannot be given (empty: all of it can)."""
        problems: list[str] = []
        if profile.plugin and profile.plugin not in self.features.password_plugins:
            problems.append(
                f"authentication plugin {profile.plugin}: rotator can set passwords only with "
                f"{', '.join(sorted(self.features.password_plugins))}"
            )
        try:
            plugin_name(profile.plugin)
        except StatementBuildError as exc:
            problems.append(str(exc))
        twin = Account("twin", "%")
        for op in sync_operations(profile, AccountProfile(plugin=profile.plugin), twin):
            try:
                self.render(op)
            except StatementBuildError as exc:
                problems.append(str(exc))
        return problems

    # -- reading the catalogue ---------------------------------------------------------
    #
    # Each question is one statement: the admin session (rotator.backends.mysql.base) keeps
    # the answers per user name and per account for the rest of its step, and forgets an
    # account's when it writes to it.

    def max_username_length(self, declared: int | None) -> int:
        """The server's limit: ``declared`` by information_schema (the admin session's
        probe reads it, :data:`MAX_USERNAME_SQL`), or the family's when it does not say."""
        return declared or self.features.fallback_max_username_length

    def read_user(self, run: Runner, user: str) -> UserEntry:
        """The hosts of ``user``'s login accounts and whether the name is a role, in one
        statement (rows of ``(host, 'account' | 'role')``)."""
        rows = run.execute(Statement(self.user_sql, (user,) * self.user_sql_names, f"list hosts of '{user}'"))
        return UserEntry(
            tuple(str(host) for host, kind in rows if text_of(kind) == "account"),
            any(text_of(kind) == "role" for _, kind in rows),
        )

    user_sql: ClassVar[str]
    user_sql_names: ClassVar[int]  # how often the query binds the name

    def role_named(self, run: Runner, name: str) -> bool:
        """Whether ``name`` is a role, asked on its own: for a :class:`UserEntry` that could not say."""
        raise NotImplementedError

    def role_privileges(self, run: Runner, role: Account, profile: AccountProfile) -> set[Privilege]:
        """Everything ``role`` holds, given its ``profile`` (as the session read it)."""
        return set(profile.privileges)

    def read_profile(self, run: Runner, account: Account) -> AccountProfile:
        return self.read_account(run, account).profile

    def read_account(self, run: Runner, account: Account) -> AccountRecord:
        """Everything rotator reads of one account, in one statement: its own row (plugin,
        TLS, limits, policy, state; none when it does not exist) joined to one row per
        privilege, role, default role, proxy grant and routine privilege it holds."""
        names, expressions, joined = self.account_row()
        entries = f"{self.privileges_sql} UNION ALL {self.edges_sql}"
        sql = (
            f"SELECT {', '.join(expressions)}, x.kind, x.a, x.b, x.c, x.d, x.e FROM (SELECT 1) AS anchor "  # noqa: S608 - constant text
            f"LEFT JOIN {joined} ON {ROW_ALIAS}.User = %s AND {ROW_ALIAS}.Host = %s "
            f"LEFT JOIN ({entries}) AS x ON TRUE"
        )
        params = (
            *who(account),
            *((f"'{account.user}'@'{account.host}'",) * 4),
            *(who(account) * self.privileges_accounts),
            *(who(account) * self.edges_parts),
        )
        rows = run.execute(Statement(sql, params, f"read account {account}"))
        width = len(names)
        row = dict(zip(names, rows[0][:width], strict=True)) if rows and rows[0][0] is not None else {}
        found = [tuple(text_of(value) for value in r[width:]) for r in rows if r[width] is not None]
        privileges = self.privileges_from(
            run.secret_id,
            account,
            [entry for entry in found if entry[0] in PRIVILEGE_LEVELS],
            checked=bool(row) and not self.row_is_role(row),
        )
        roles: set[RoleGrant] = set()
        defaults: set[tuple[str, str]] = set()
        proxies: set[ProxyGrant] = set()
        for kind, first, second, third, fourth, _ in (entry for entry in found if entry[0] not in PRIVILEGE_LEVELS):
            if kind == "role":
                roles.add(RoleGrant(first, second, third == "Y"))
            elif kind == "default":
                defaults.add((first, second))
            elif kind == "proxy":
                proxies.add(ProxyGrant(first, second, third == "Y"))
            else:  # a routine: schema, name, type, privileges
                for privilege in fourth.split(","):
                    if privilege:
                        name = GRANT_OPTION if privilege == "Grant" else privilege.upper()
                        privileges.add(Privilege(name, first, second, "", third))
        held = AccountProfile(
            privileges=frozenset(privileges),
            roles=frozenset(roles),
            default_roles=frozenset(defaults),
            proxies=frozenset(proxies),
        )
        if not row:
            return AccountRecord(held, AccountState())
        return AccountRecord(self.complete_profile(row, held), self.state_from(row))

    # family hooks for read_account
    edges_sql: ClassVar[str]  # rows of (kind, four values, ''): roles, default roles, proxies, routines
    edges_parts: ClassVar[int]  # (user, host) pairs the query binds

    def account_row(self) -> tuple[list[str], list[str], str]:
        """The account's own row: column names, their expressions over ``u`` (ROW_ALIAS),
        and what to join for it (the join condition follows)."""
        raise NotImplementedError

    def row_is_role(self, row: dict[str, Any]) -> bool:
        return False

    def complete_profile(self, row: dict[str, Any], held: AccountProfile) -> AccountProfile:
        """``held`` (grants, roles, proxies) with what the account's own row says."""
        raise NotImplementedError

    def state_from(self, row: dict[str, Any]) -> AccountState:
        """Locked, or its password expired, from the account's own row."""
        raise NotImplementedError

    privileges_sql: ClassVar[str]  # rows of (level, schema, table, column, privilege, grantable)
    privileges_accounts: ClassVar[int]  # (user, host) pairs the query binds after the four grantees

    def privileges_from(
        self, secret_id: str, account: Account, rows: list[tuple[str, ...]], *, checked: bool
    ) -> set[Privilege]:
        """Global, schema, table and column privileges from information_schema (and, on
        MySQL, dynamic ones from mysql.global_grants). ``checked``: the account exists, so
        no row at all means the views hid it from this admin — an error, not "nothing"."""
        dynamic = {row[4] for row in rows if row[0] == "dynamic"}
        held: set[Privilege] = set()
        seen_global = False
        for level, schema, table, column, name, grantable in rows:
            if level == "dynamic":
                held.add(Privilege(name, dynamic=True, grantable=grantable == "Y"))
                continue
            if level == "global":
                seen_global = True
                if name in dynamic:  # read with its own grant option above
                    continue
            if name != "USAGE":
                held.add(Privilege(name, schema, table, column))
            if grantable == "YES":
                # Grant option belongs to the object; a column grant's object is its table.
                held.add(Privilege(GRANT_OPTION, schema, table))
        if checked and not seen_global:
            raise DatabaseError(
                secret_id,
                f"the admin sees no row of {account} in information_schema.USER_PRIVILEGES although the account "
                "exists: the server hides other accounts' privileges from it (GRANT SELECT ON mysql.* to the admin)",
            )
        return held


# information_schema's four privilege views have one shape: read them in one round trip.
# The first SELECT names the union's columns (read_account joins it as ``x``).
INFORMATION_SCHEMA_PRIVILEGES = " UNION ALL ".join(
    f"SELECT {columns} FROM information_schema.{view} WHERE GRANTEE = %s"  # noqa: S608 - constant text
    for columns, view in (
        (
            "'global' AS kind, '' AS a, '' AS b, '' AS c, PRIVILEGE_TYPE AS d, IS_GRANTABLE AS e",
            "USER_PRIVILEGES",
        ),
        ("'schema', TABLE_SCHEMA, '', '', PRIVILEGE_TYPE, IS_GRANTABLE", "SCHEMA_PRIVILEGES"),
        ("'table', TABLE_SCHEMA, TABLE_NAME, '', PRIVILEGE_TYPE, IS_GRANTABLE", "TABLE_PRIVILEGES"),
        ("'column', TABLE_SCHEMA, TABLE_NAME, COLUMN_NAME, PRIVILEGE_TYPE, IS_GRANTABLE", "COLUMN_PRIVILEGES"),
    )
)
ROUTINES_AND_PROXIES = (
    "SELECT 'proxy', Proxied_user, Proxied_host, IF(With_grant, 'Y', 'N'), '', '' FROM mysql.proxies_priv "
    "WHERE User = %s AND Host = %s "
    "UNION ALL SELECT 'routine', Db, Routine_name, Routine_type, Proc_priv, '' FROM mysql.procs_priv "
    "WHERE User = %s AND Host = %s"
)
TLS_COLUMNS = ("ssl_type", "ssl_cipher", "x509_issuer", "x509_subject")


def tls_from(row: dict[str, Any]) -> TlsRequirement:
    return TlsRequirement(*(text_of(row.get(column)) for column in TLS_COLUMNS)) if row else TlsRequirement()


def limit_value(value: Any) -> int | Decimal:
    return value if isinstance(value, Decimal) else int(value)


def attributes_json(text: Any) -> dict[str, Any]:
    value = json.loads(text_of(text) or "{}")
    return value if isinstance(value, dict) else {}


def who(account: Account) -> tuple[str, str]:
    return (account.user, account.host)


def _require_clause(tls: TlsRequirement) -> tuple[str, tuple[str, ...]]:
    kind = tls.ssl_type.upper()
    if kind == "ANY":
        return "SSL", ()
    if kind == "X509":
        return "X509", ()
    parts, params = [], []
    if kind == "SPECIFIED":
        for word, value in (("ISSUER", tls.issuer), ("SUBJECT", tls.subject), ("CIPHER", tls.cipher)):
            if value:
                parts.append(f"{word} %s")
                params.append(value)
    return (" AND ".join(parts), tuple(params)) if parts else ("NONE", ())


def text_of(value: Any) -> str:
    if isinstance(value, bytes | bytearray):
        return value.decode("utf-8", "replace")
    return "" if value is None else str(value)
