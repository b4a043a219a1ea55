"""What a database account is allowed to do, as plain values, and the typed
operations that make one account's profile equal another's.

The profile is read from catalogue rows (not parsed from ``SHOW GRANTS`` text), so
comparing two accounts is comparing two sets. The twin is brought to the current
user's profile by applying the difference: privileges it lacks are granted, extras
are revoked, and nothing it already holds is touched, so connections using it never
see a privilege disappear and come back.

Nothing here writes SQL: :func:`sync_operations` returns operations
(:class:`GrantPrivilege`, :class:`SetDefaultRoles`, ...), and the server family's
dialect (:mod:`rotator.backends.mysql.dialects`) renders each one in that family's syntax.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, NamedTuple, TypeVar

# The values and operations here are NamedTuples rather than frozen dataclasses: they
# are defined at every cold start, and a dataclass costs ~0.3 ms more to define (its
# methods are generated and compiled at import); the 26 dataclasses here were a tenth of the
# function's import time. They are immutable and hashable all the same. The three
# operations that carry a password stay dataclasses with ``repr=False`` fields: a
# tuple's fields would be written out wherever it is serialised (a log's JSON, say).

GRANT_OPTION = "GRANT OPTION"
SYSTEM_USER = "SYSTEM_USER"  # MySQL 8.0.16+: only an account that holds it may change one that does


class Privilege(NamedTuple):
    """One privilege on one object; an empty string means "not at that level"
    (no schema: global ``*.*``; no table: ``schema.*``).

    Static privileges share one grant option per object, held as a separate
    ``Privilege(GRANT_OPTION, schema, table)``. A MySQL *dynamic* privilege
    (``XA_RECOVER_ADMIN``, ``SYSTEM_USER``, ...) is global only and carries its own
    grant option: ``dynamic=True`` and ``grantable``.
    """

    privilege: str
    schema: str = ""
    table: str = ""
    column: str = ""
    routine_type: str = ""  # PROCEDURE / FUNCTION: then ``table`` is the routine
    dynamic: bool = False
    grantable: bool = False  # a dynamic privilege's own WITH GRANT OPTION

    def describe(self) -> str:
        column = f"({self.column})" if self.column else ""
        grantable = " WITH GRANT OPTION" if self.grantable else ""
        return f"{self.privilege}{column} ON {self.object_name()}{grantable}"

    def object_name(self) -> str:
        """The object, as people write it (for messages; the dialect renders SQL)."""
        if not self.schema:
            return "*.*"
        schema = "`" + self.schema.replace("`", "``") + "`"
        if not self.table:
            return f"{schema}.*"
        target = f"{schema}.`{self.table.replace('`', '``')}`"
        return f"{self.routine_type} {target}" if self.routine_type else target


class RoleGrant(NamedTuple):
    role: str
    role_host: str = ""  # MySQL 8 roles are accounts; MariaDB roles have no host
    admin_option: bool = False

    def describe(self) -> str:
        name = f"`{self.role}`" if not self.role_host else f"`{self.role}`@`{self.role_host}`"
        return name + (" WITH ADMIN OPTION" if self.admin_option else "")

    @property
    def key(self) -> tuple[str, str]:
        return (self.role, self.role_host)


class ProxyGrant(NamedTuple):
    """``GRANT PROXY ON user@host``: the account may log in as (proxy) ``user@host``."""

    user: str
    host: str
    grant_option: bool = False

    def describe(self) -> str:
        return f"PROXY ON '{self.user}'@'{self.host}'" + (" WITH GRANT OPTION" if self.grant_option else "")


class TlsRequirement(NamedTuple):
    ssl_type: str = ""  # '', ANY, X509, SPECIFIED: as in mysql.user
    cipher: str = ""
    issuer: str = ""
    subject: str = ""


# ALTER USER ... WITH <option> — the column of mysql.user each option reads.
LIMIT_OPTIONS = {
    "MAX_QUERIES_PER_HOUR": "max_questions",
    "MAX_UPDATES_PER_HOUR": "max_updates",
    "MAX_CONNECTIONS_PER_HOUR": "max_connections",
    "MAX_USER_CONNECTIONS": "max_user_connections",
    "MAX_STATEMENT_TIME": "max_statement_time",  # MariaDB only
}


class AccountPolicy(NamedTuple):
    """Password and login policies of one account. ``None`` is the server's default
    (``DEFAULT`` in SQL); a family without a policy leaves it at its neutral value."""

    password_lifetime: int | None = None  # days; 0 = PASSWORD EXPIRE NEVER
    password_history: int | None = None  # MySQL
    password_reuse_days: int | None = None  # MySQL
    require_current: bool | None = None  # MySQL: True = REQUIRE CURRENT, False = OPTIONAL
    failed_login_attempts: int = 0  # MySQL; 0 = no lock-out
    password_lock_days: int = 0  # MySQL; -1 = UNBOUNDED
    attributes: str = ""  # MySQL: the account's ATTRIBUTE / COMMENT JSON object, canonical text; "" = none


class AccountProfile(NamedTuple):
    privileges: frozenset[Privilege] = frozenset()
    roles: frozenset[RoleGrant] = frozenset()
    default_roles: frozenset[tuple[str, str]] = frozenset()
    tls: TlsRequirement = TlsRequirement()
    limits: tuple[tuple[str, int | Decimal], ...] = ()
    proxies: frozenset[ProxyGrant] = frozenset()
    # MySQL partial revokes: Privilege(name, schema) = "name on *.* but not on schema".
    restrictions: frozenset[Privilege] = frozenset()
    plugin: str = ""  # authentication plugin ("" = unknown); a chain is "a OR b"
    policy: AccountPolicy = AccountPolicy()
    # What else the backend reads of the account, as comparable lines with the account's
    # own name as ``<account>`` (PostgreSQL: the role's whole catalogue reading); empty
    # for the MySQL family, whose profile is the fields above.
    definition: tuple[str, ...] = ()


class AccountState(NamedTuple):
    """What the server does with a login right now (not copied: a state, not a setting)."""

    locked: bool = False  # ACCOUNT LOCK
    password_expired: bool = False  # PASSWORD EXPIRE (or its lifetime ran out)


class Account(NamedTuple):
    user: str
    host: str

    def __str__(self) -> str:
        return f"'{self.user}'@'{self.host}'"


# -- operations: what a sync does, in no server's syntax ---------------------------------


def _same_operation(self: tuple[Any, ...], other: object) -> bool:
    return type(self) is type(other) and tuple.__eq__(self, other) is True


def _other_operation(self: tuple[Any, ...], other: object) -> bool:
    return not _same_operation(self, other)


def _operation_hash(self: tuple[Any, ...]) -> int:
    return hash((type(self), tuple.__hash__(self)))


_OPERATION_METHODS = {"__eq__": _same_operation, "__ne__": _other_operation, "__hash__": _operation_hash}

_Operation = TypeVar("_Operation", bound=tuple[Any, ...])


def _operation(cls: type[_Operation]) -> type[_Operation]:
    """A NamedTuple operation that, unlike a plain tuple, equals and hashes only with
    its own type: ``GrantPrivilege(a, p)`` never passes for ``RevokePrivilege(a, p)``."""
    for name, method in _OPERATION_METHODS.items():
        setattr(cls, name, method)
    return cls


@dataclass(frozen=True)
class CreateUser:
    account: Account
    password: str = field(repr=False)
    plugin: str = ""  # "" = the server's default


@dataclass(frozen=True)
class SetPassword:
    """An admin sets another account's password (and its plugin, to the user's)."""

    account: Account
    password: str = field(repr=False)
    plugin: str = ""
    # Dual passwords (features.supports_dual_password): the old password stays valid as the
    # secondary one, and ``version`` is written into the account's attributes in the same
    # statement (features.has_account_attributes), so a retry can tell the change was made.
    retain_current: bool = False
    version: str = ""


@dataclass(frozen=True)
class ChangeOwnPassword:
    """A logged-in user changes its own password; ``current`` answers REQUIRE CURRENT (and
    makes the change a compare-and-swap); None: replace the primary whatever it is."""

    password: str = field(repr=False)
    current: str | None = field(repr=False)
    retain_current: bool = False  # dual passwords: the current password stays valid as the secondary one


@_operation
class DropUser(NamedTuple):
    account: Account


@_operation
class GrantPrivilege(NamedTuple):
    account: Account
    privilege: Privilege


@_operation
class RevokePrivilege(NamedTuple):
    account: Account
    privilege: Privilege


@_operation
class AddRestriction(NamedTuple):
    """A partial revoke: take ``privilege.privilege`` away on ``privilege.schema`` only."""

    account: Account
    privilege: Privilege


@_operation
class RemoveRestriction(NamedTuple):
    account: Account
    privilege: Privilege


@_operation
class GrantRole(NamedTuple):
    account: Account
    role: RoleGrant


@_operation
class RevokeRole(NamedTuple):
    account: Account
    role: RoleGrant


@_operation
class RevokeAdminOption(NamedTuple):
    account: Account
    role: RoleGrant


@_operation
class SetDefaultRoles(NamedTuple):
    account: Account
    roles: tuple[tuple[str, str], ...]  # empty: NONE


@_operation
class GrantProxy(NamedTuple):
    account: Account
    proxy: ProxyGrant


@_operation
class RevokeProxy(NamedTuple):
    account: Account
    proxy: ProxyGrant


@_operation
class RequireTls(NamedTuple):
    account: Account
    tls: TlsRequirement


@_operation
class SetLimits(NamedTuple):
    account: Account
    limits: tuple[tuple[str, int | Decimal], ...]


@_operation
class SetPasswordPolicy(NamedTuple):
    account: Account
    policy: AccountPolicy


@_operation
class SetAttributes(NamedTuple):
    """Make the account's ATTRIBUTE object equal ``target`` (MySQL merges: ``patch`` says how)."""

    account: Account
    patch: str  # a JSON merge patch: the target's keys, and null for each key to remove


Operation = (
    CreateUser
    | SetPassword
    | ChangeOwnPassword
    | DropUser
    | GrantPrivilege
    | RevokePrivilege
    | AddRestriction
    | RemoveRestriction
    | GrantRole
    | RevokeRole
    | RevokeAdminOption
    | SetDefaultRoles
    | GrantProxy
    | RevokeProxy
    | RequireTls
    | SetLimits
    | SetPasswordPolicy
    | SetAttributes
)


def differences(source: AccountProfile, twin: AccountProfile) -> list[str]:
    """Human-readable differences (no secrets: only privilege, role and setting names)."""
    found = [
        *_missing_and_extra("", source.privileges, twin.privileges),
        *_missing_and_extra("partial revoke of ", source.restrictions, twin.restrictions),
        *_missing_and_extra("role ", source.roles, twin.roles),
        *_missing_and_extra("", source.proxies, twin.proxies),
        *(f"missing {line}" for line in sorted(set(source.definition) - set(twin.definition))),
        *(f"extra {line}" for line in sorted(set(twin.definition) - set(source.definition))),
    ]
    settings = (
        (source.default_roles != twin.default_roles, "default roles differ"),
        (
            source.tls != twin.tls,
            f"TLS requirement differs ({source.tls.ssl_type or 'NONE'} vs {twin.tls.ssl_type or 'NONE'})",
        ),
        (source.limits != twin.limits, "resource limits differ"),
        (source.plugin != twin.plugin, f"authentication plugin differs ({source.plugin} vs {twin.plugin})"),
        (
            _policy_only(source.policy) != _policy_only(twin.policy),
            "password policy differs (expiry, history, reuse, REQUIRE CURRENT or failed-login lock)",
        ),
        (source.policy.attributes != twin.policy.attributes, "account attributes or comment differ"),
    )
    return found + [message for differs, message in settings if differs]


def _missing_and_extra(what: str, wanted: frozenset[Any], held: frozenset[Any]) -> list[str]:
    return [f"missing {what}{item.describe()}" for item in sorted(wanted - held)] + [
        f"extra {what}{item.describe()}" for item in sorted(held - wanted)
    ]


def sync_operations(source: AccountProfile, twin: AccountProfile, account: Account) -> list[Operation]:
    """Operations that turn ``twin`` (the profile ``account`` has now) into ``source``.

    Revocations come first so that the twin never holds more than the source at
    the end of a partial run; grants follow; then partial revokes (which need the
    global privilege they restrict), roles, proxies, TLS, limits and policies. The
    password and plugin are set before this, by :class:`CreateUser` / :class:`SetPassword`.
    """
    return [*_revocations(source, twin, account), *_grants(source, twin, account), *_settings(source, twin, account)]


def _revocations(source: AccountProfile, twin: AccountProfile, account: Account) -> list[Operation]:
    source_roles = {role.key for role in source.roles}
    ops: list[Operation] = [
        RevokeRole(account, role)
        for role in sorted(twin.roles - source.roles)
        if role.key not in source_roles  # same role, other admin option: handled with the grants
    ]
    ops += [RevokeProxy(account, proxy) for proxy in sorted(twin.proxies - source.proxies)]
    ops += [RevokePrivilege(account, priv) for priv in sorted(twin.privileges - source.privileges)]
    return ops


def _grants(source: AccountProfile, twin: AccountProfile, account: Account) -> list[Operation]:
    ops: list[Operation] = [GrantPrivilege(account, priv) for priv in sorted(source.privileges - twin.privileges)]
    # Revoking a global privilege took its restrictions along; granting on the schema
    # would then add a schema-level grant instead of lifting a restriction.
    ops += [
        RemoveRestriction(account, priv)
        for priv in sorted(twin.restrictions - source.restrictions)
        if Privilege(priv.privilege) in source.privileges
    ]
    ops += [AddRestriction(account, priv) for priv in sorted(source.restrictions - twin.restrictions)]
    for role in sorted(source.roles - twin.roles):
        held_with_admin = RoleGrant(role.role, role.role_host, True) in twin.roles
        ops.append(
            RevokeAdminOption(account, role) if held_with_admin and not role.admin_option else GrantRole(account, role)
        )
    if source.default_roles != twin.default_roles:
        ops.append(SetDefaultRoles(account, tuple(sorted(source.default_roles))))
    ops += [GrantProxy(account, proxy) for proxy in sorted(source.proxies - twin.proxies)]
    return ops


def _settings(source: AccountProfile, twin: AccountProfile, account: Account) -> list[Operation]:
    ops: list[Operation] = []
    if source.tls != twin.tls:
        ops.append(RequireTls(account, source.tls))
    if source.limits != twin.limits and source.limits:
        ops.append(SetLimits(account, source.limits))
    if _policy_only(source.policy) != _policy_only(twin.policy):
        ops.append(SetPasswordPolicy(account, source.policy))
    if source.policy.attributes != twin.policy.attributes:
        ops.append(SetAttributes(account, attributes_patch(source.policy.attributes, twin.policy.attributes)))
    return ops


# The account attribute under which a dual-password change by the admin records the
# secret version it set (see SetPassword.version).
PASSWORD_VERSION_ATTRIBUTE = "rotator_password_version"  # noqa: S105 - a key, not a password


def password_version(profile: AccountProfile) -> str | None:
    """The secret version whose password the admin last set with dual passwords, if any."""
    value = json.loads(profile.policy.attributes or "{}").get(PASSWORD_VERSION_ATTRIBUTE)
    return value if isinstance(value, str) else None


def canonical_attributes(text: str | None) -> str:
    """An ATTRIBUTE JSON object as canonical text ("" for none or an empty object)."""
    if not text:
        return ""
    value = json.loads(text)
    return json.dumps(value, sort_keys=True, separators=(",", ":")) if value else ""


def attributes_patch(source: str, twin: str) -> str:
    """The JSON merge patch that turns the twin's attributes into the source's."""
    wanted: dict[str, Any] = json.loads(source) if source else {}
    held: dict[str, Any] = json.loads(twin) if twin else {}
    return json.dumps(_merge_patch(wanted, held), sort_keys=True, separators=(",", ":"))


def _merge_patch(wanted: dict[str, Any], held: dict[str, Any]) -> dict[str, Any]:
    # RFC 7386 merges objects key by key: a nested object needs its own patch.
    patch: dict[str, Any] = {key: None for key in held if key not in wanted}
    for key, value in wanted.items():
        inner = held.get(key)
        patch[key] = _merge_patch(value, inner) if isinstance(value, dict) and isinstance(inner, dict) else value
    return patch


def _policy_only(policy: AccountPolicy) -> AccountPolicy:
    return policy._replace(attributes="")
