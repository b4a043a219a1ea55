"""What a database account is allowed to do, as plain values, and how to make one
account's profile equal another's.

The profile is read from catalogue rows (not parsed from ``SHOW GRANTS`` text), so
comparing two accounts is comparing two sets. The twin is brought to the current
user's profile by applying the difference: privileges it lacks are granted, extras
are revoked, and nothing it already holds is touched, so connections using it never
see a privilege disappear and come back.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from decimal import Decimal

from rotator.sql import Statement, keyword, quote_identifier

GRANT_OPTION = "GRANT OPTION"


@dataclass(frozen=True, order=True)
class Privilege:
    """One privilege on one object; an empty string means "not at that level"
    (no schema: global ``*.*``; no table: ``schema.*``)."""

    privilege: str
    schema: str = ""
    table: str = ""
    column: str = ""
    routine_type: str = ""  # PROCEDURE / FUNCTION: then ``table`` is the routine

    def on_clause(self) -> str:
        if not self.schema:
            return "*.*"
        schema = quote_identifier(self.schema)
        if not self.table:
            return f"{schema}.*"
        target = f"{schema}.{quote_identifier(self.table)}"
        if self.routine_type:
            return f"{keyword(self.routine_type)} {target}"
        return target

    def describe(self) -> str:
        column = f"({self.column})" if self.column else ""
        return f"{self.privilege}{column} ON {self.on_clause()}"


@dataclass(frozen=True, order=True)
class RoleGrant:
    role: str
    role_host: str = ""  # MySQL 8 roles are accounts; MariaDB roles have no host
    admin_option: bool = False

    def role_sql(self) -> str:
        name = quote_identifier(self.role)
        return name if not self.role_host else f"{name}@{quote_identifier(self.role_host)}"


@dataclass(frozen=True)
class TlsRequirement:
    ssl_type: str = ""  # '', ANY, X509, SPECIFIED: as in mysql.user
    cipher: str = ""
    issuer: str = ""
    subject: str = ""

    def require_clause(self) -> tuple[str, tuple[str, ...]]:
        kind = self.ssl_type.upper()
        if kind == "":
            return "NONE", ()
        if kind == "ANY":
            return "SSL", ()
        if kind == "X509":
            return "X509", ()
        parts, params = [], []
        for word, value in (("ISSUER", self.issuer), ("SUBJECT", self.subject), ("CIPHER", self.cipher)):
            if value:
                parts.append(f"{word} %s")
                params.append(value)
        if not parts:
            return "NONE", ()
        return " AND ".join(parts), tuple(params)


# ALTER USER ... WITH <option> — the column of mysql.user each option reads.
LIMIT_OPTIONS = {
    "MAX_QUERIES_PER_HOUR": "max_questions",
    "MAX_UPDATES_PER_HOUR": "max_updates",
    "MAX_CONNECTIONS_PER_HOUR": "max_connections",
    "MAX_USER_CONNECTIONS": "max_user_connections",
    "MAX_STATEMENT_TIME": "max_statement_time",  # MariaDB only
}


@dataclass(frozen=True)
class AccountProfile:
    privileges: frozenset[Privilege] = frozenset()
    roles: frozenset[RoleGrant] = frozenset()
    default_roles: frozenset[tuple[str, str]] = frozenset()
    tls: TlsRequirement = field(default_factory=TlsRequirement)
    limits: tuple[tuple[str, int | Decimal], ...] = ()


@dataclass(frozen=True)
class Account:
    user: str
    host: str

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


def differences(source: AccountProfile, twin: AccountProfile) -> list[str]:
    """Human-readable differences (no secrets: only privilege and role names)."""
    found: list[str] = []
    for priv in sorted(source.privileges - twin.privileges):
        found.append(f"missing {priv.describe()}")
    for priv in sorted(twin.privileges - source.privileges):
        found.append(f"extra {priv.describe()}")
    for role in sorted(source.roles - twin.roles):
        found.append(f"missing role {role.role_sql()}{' WITH ADMIN OPTION' if role.admin_option else ''}")
    for role in sorted(twin.roles - source.roles):
        found.append(f"extra role {role.role_sql()}{' WITH ADMIN OPTION' if role.admin_option else ''}")
    if source.default_roles != twin.default_roles:
        found.append("default roles differ")
    if source.tls != twin.tls:
        found.append(f"TLS requirement differs ({source.tls.ssl_type or 'NONE'} vs {twin.tls.ssl_type or 'NONE'})")
    if source.limits != twin.limits:
        found.append("resource limits differ")
    return found


def sync_statements(source: AccountProfile, twin: AccountProfile, account: Account) -> list[Statement]:
    """Statements that turn ``twin`` (the profile ``account`` has now) into ``source``.

    Revocations come first so that the twin never holds more than the source at
    the end of a partial run; grants follow; then roles, TLS and limits.
    """
    who = (account.user, account.host)
    statements: list[Statement] = []

    for role in sorted(twin.roles - source.roles):
        if any(r.role == role.role and r.role_host == role.role_host for r in source.roles):
            continue  # same role, admin option differs: handled by the grant below
        statements.append(
            Statement(f"REVOKE {role.role_sql()} FROM %s@%s", who, f"revoke role {role.role_sql()} from {account}")
        )
    for priv in sorted(twin.privileges - source.privileges):
        statements.append(_revoke(priv, account))
    for priv in sorted(source.privileges - twin.privileges):
        statements.append(_grant(priv, account))
    for role in sorted(source.roles - twin.roles):
        held_with_admin = RoleGrant(role.role, role.role_host, True) in twin.roles
        if held_with_admin and not role.admin_option:
            statements.append(
                Statement(
                    f"REVOKE ADMIN OPTION FOR {role.role_sql()} FROM %s@%s",
                    who,
                    f"revoke admin option for {role.role_sql()} from {account}",
                )
            )
            continue
        suffix = " WITH ADMIN OPTION" if role.admin_option else ""
        statements.append(
            Statement(f"GRANT {role.role_sql()} TO %s@%s{suffix}", who, f"grant role {role.role_sql()} to {account}")
        )
    if source.default_roles != twin.default_roles:
        statements.append(_default_roles(source.default_roles, account))
    if source.tls != twin.tls:
        clause, params = source.tls.require_clause()
        statements.append(
            Statement(f"ALTER USER %s@%s REQUIRE {clause}", (*who, *params), f"set TLS requirement of {account}")
        )
    if source.limits != twin.limits and source.limits:
        options = " ".join(f"{keyword(name)} %s" for name, _ in source.limits)
        values = tuple(value for _, value in source.limits)
        statements.append(
            Statement(f"ALTER USER %s@%s WITH {options}", (*who, *values), f"set resource limits of {account}")
        )
    return statements


def _grant(priv: Privilege, account: Account) -> Statement:
    who = (account.user, account.host)
    if priv.privilege == GRANT_OPTION:
        sql = f"GRANT USAGE ON {priv.on_clause()} TO %s@%s WITH GRANT OPTION"
    else:
        sql = f"GRANT {_priv_sql(priv)} ON {priv.on_clause()} TO %s@%s"
    return Statement(sql, who, f"grant {priv.describe()} to {account}")


def _revoke(priv: Privilege, account: Account) -> Statement:
    who = (account.user, account.host)
    name = GRANT_OPTION if priv.privilege == GRANT_OPTION else _priv_sql(priv)
    return Statement(f"REVOKE {name} ON {priv.on_clause()} FROM %s@%s", who, f"revoke {priv.describe()} from {account}")


def _priv_sql(priv: Privilege) -> str:
    name = keyword(priv.privilege)
    return f"{name} ({quote_identifier(priv.column)})" if priv.column else name


def _default_roles(roles: frozenset[tuple[str, str]], account: Account) -> Statement:
    who = (account.user, account.host)
    if not roles:
        return Statement("SET DEFAULT ROLE NONE FOR %s@%s", who, f"clear default role of {account}")
    names = ", ".join(RoleGrant(role, host).role_sql() for role, host in sorted(roles))
    return Statement(f"SET DEFAULT ROLE {names} FOR %s@%s", who, f"set default role of {account}")
