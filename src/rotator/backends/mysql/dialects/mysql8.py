"""MySQL 8.0 and later (Aurora MySQL 3 included).

Roles are accounts (``role``@``host``, ``'%'`` unless said otherwise); dynamic
privileges carry their own grant option (read from ``mysql.global_grants``: the
``IS_GRANTABLE`` of ``information_schema.USER_PRIVILEGES`` is the static privileges'
shared grant option); partial revokes, failed-login lock, comment and attributes
are in ``mysql.user.User_attributes``.

Version gates follow MySQL's release notes: PASSWORD REQUIRE CURRENT 8.0.13, dual
passwords 8.0.14, partial revokes 8.0.16, FAILED_LOGIN_ATTEMPTS 8.0.19, ATTRIBUTE /
COMMENT 8.0.21. Aurora MySQL 3 is 8.0.23 and later.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

from rotator.accounts import (
    LIMIT_OPTIONS,
    PASSWORD_VERSION_ATTRIBUTE,
    Account,
    AccountPolicy,
    AccountProfile,
    AccountState,
    AddRestriction,
    ChangeOwnPassword,
    Privilege,
    RemoveRestriction,
    RoleGrant,
    canonical_attributes,
)
from rotator.backends.mysql.dialects.common import (
    INFORMATION_SCHEMA_PRIVILEGES,
    ROUTINES_AND_PROXIES,
    TLS_COLUMNS,
    WHO,
    Dialect,
    Features,
    Runner,
    StoredPasswords,
    UserEntry,
    attributes_json,
    limit_value,
    text_of,
    tls_from,
    who,
)
from rotator.errors import DatabaseError, DatabaseUnreachableError, StatementBuildError
from rotator.ports import DualPasswords, LoginLimit
from rotator.sql import Statement, keyword, plugin_name, quote_identifier

# The login limit in one's own SHOW CREATE USER. A space-delimited match cannot come from
# the hash (no spaces in it); COMMENT and ATTRIBUTE, which could hold such text, are
# printed after these clauses, so the first match is the account's own.
_FAILED_LOGINS = re.compile(r" FAILED_LOGIN_ATTEMPTS (\d+) PASSWORD_LOCK_TIME (\d+|UNBOUNDED)")
# "GRANT <privileges> ON *.* TO ...": the global grants in SHOW GRANTS output.
_GLOBAL_GRANT = re.compile(r"GRANT (.+?) ON \*\.\* TO ")
# Either lets a user keep its current password as the secondary one (RETAIN CURRENT PASSWORD).
_RETAIN_OWN = frozenset({"APPLICATION_PASSWORD_ADMIN", "CREATE USER", "ALL PRIVILEGES"})
_LIMITS = ("MAX_QUERIES_PER_HOUR", "MAX_UPDATES_PER_HOUR", "MAX_CONNECTIONS_PER_HOUR", "MAX_USER_CONNECTIONS")
_POLICY_COLUMNS = (
    "plugin",
    "password_lifetime",
    "Password_reuse_history",
    "Password_reuse_time",
    "Password_require_current",
    "User_attributes",
)


class MySQL(Dialect):
    family: ClassVar[str] = "mysql"
    # Roles are accounts: one granted as a role, or one made by CREATE ROLE (locked, with
    # no password) that nobody holds yet. Its hosts are listed too.
    user_sql: ClassVar[str] = (
        "SELECT Host, 'account' FROM mysql.user WHERE User = %s "
        "UNION ALL SELECT NULL, 'role' FROM DUAL WHERE EXISTS (SELECT 1 FROM mysql.role_edges WHERE FROM_USER = %s) "
        "OR EXISTS (SELECT 1 FROM mysql.default_roles WHERE DEFAULT_ROLE_USER = %s) "
        "OR EXISTS (SELECT 1 FROM mysql.user WHERE User = %s AND account_locked = 'Y' AND authentication_string = '') "
        "ORDER BY 1"
    )
    user_sql_names: ClassVar[int] = 4
    _role_sql: ClassVar[str] = (
        "SELECT (SELECT COUNT(*) FROM mysql.role_edges WHERE FROM_USER = %s)"
        " + (SELECT COUNT(*) FROM mysql.default_roles WHERE DEFAULT_ROLE_USER = %s)"
        " + (SELECT COUNT(*) FROM mysql.user WHERE User = %s AND account_locked = 'Y'"
        " AND authentication_string = '')"
    )
    privileges_sql: ClassVar[str] = (
        f"{INFORMATION_SCHEMA_PRIVILEGES} UNION ALL SELECT 'dynamic', '', '', '', PRIV, WITH_GRANT_OPTION "  # noqa: S608 - constant text
        "FROM mysql.global_grants WHERE USER = %s AND HOST = %s"
    )
    privileges_accounts: ClassVar[int] = 1
    edges_sql: ClassVar[str] = (
        "SELECT 'role', FROM_USER, FROM_HOST, WITH_ADMIN_OPTION, '', '' FROM mysql.role_edges "  # noqa: S608 - constant text
        "WHERE TO_USER = %s AND TO_HOST = %s "
        "UNION ALL SELECT 'default', DEFAULT_ROLE_USER, DEFAULT_ROLE_HOST, '', '', '' FROM mysql.default_roles "
        f"WHERE USER = %s AND HOST = %s UNION ALL {ROUTINES_AND_PROXIES}"
    )
    edges_parts: ClassVar[int] = 4

    @classmethod
    def make_features(cls, version: tuple[int, int, int]) -> Features:
        return Features(
            family=cls.family,
            roles_have_hosts=True,
            multiple_default_roles=True,
            default_role_syntax="TO",
            has_dynamic_privileges=True,
            has_partial_revokes=version >= (8, 0, 16),
            has_revoke_admin_option=False,
            supports_password_require_current=version >= (8, 0, 13),
            supports_dual_password=version >= (8, 0, 14),
            has_password_reuse_policy=True,
            has_failed_login_lock=version >= (8, 0, 19),
            has_account_attributes=version >= (8, 0, 21),
            has_proxy_grants=True,
            # mysql_native_password: Aurora MySQL 3's default, gone from MySQL 9.
            password_plugins=frozenset({"caching_sha2_password", "mysql_native_password", "sha256_password"}),
            limit_options=_LIMITS,
            fallback_max_username_length=32,
        )

    # -- rendering -------------------------------------------------------------------

    def identified(self, plugin: str) -> str:
        return f"IDENTIFIED WITH {plugin_name(plugin)} BY %s" if plugin else "IDENTIFIED BY %s"

    def set_password(self, op: Any) -> Statement:
        if not op.retain_current:
            return super().set_password(op)
        dual = self.admin_dual_passwords()
        if not dual.available:
            raise StatementBuildError(dual.reason)
        # RETAIN CURRENT PASSWORD keeps the plugin: naming it again is refused when it
        # differs. The version goes into the account's attributes in the same statement:
        # the change and its mark are one, whatever happens to the function in between.
        return Statement(
            f"ALTER USER {WHO} IDENTIFIED BY %s RETAIN CURRENT PASSWORD ATTRIBUTE %s",
            (*who(op.account), op.password, json.dumps({PASSWORD_VERSION_ATTRIBUTE: op.version})),
            f"set password of {op.account}, keeping the current one",
        )

    def change_own_password(self, op: ChangeOwnPassword) -> Statement:
        # ALTER USER USER() keeps the account's plugin. REPLACE names the current
        # password, which PASSWORD REQUIRE CURRENT (or password_require_current=ON)
        # demands and which is accepted, and checked, when not required. Without it
        # (op.current None: replacing a primary that is someone else's) the server keeps
        # the secondary password as it is.
        sql, params = "ALTER USER USER() IDENTIFIED BY %s", [op.password]
        if self.features.supports_password_require_current and op.current is not None:
            sql += " REPLACE %s"
            params.append(op.current)
        if op.retain_current:
            if not self.features.supports_dual_password:
                raise StatementBuildError(f"MySQL {self.server.version_string} has no dual passwords")
            sql += " RETAIN CURRENT PASSWORD"
        return Statement(sql, tuple(params), "set own password")

    def own_dual_passwords(self, run: Runner) -> DualPasswords:
        if not self.features.supports_dual_password:
            return super().own_dual_passwords(run)
        # SHOW GRANTS (for oneself: no privilege needed) lists the privileges of the
        # session's active roles too, which are what the server checks.
        grants = [text_of(row[0]) for row in run.execute(Statement("SHOW GRANTS", (), "read own grants"))]
        held = {
            privilege.strip().upper()
            for grant in grants
            if (match := _GLOBAL_GRANT.match(grant))
            for privilege in match.group(1).split(",")
        }
        if held & _RETAIN_OWN:
            return DualPasswords(True, True, "the user may keep its current password (APPLICATION_PASSWORD_ADMIN)")
        return DualPasswords(
            True,
            False,
            "the user lacks APPLICATION_PASSWORD_ADMIN, which keeping one's current password as a secondary needs",
        )

    def stored_passwords(self, run: Runner, account: Account) -> StoredPasswords | None:
        rows = run.execute(
            Statement(
                "SELECT plugin, authentication_string, "
                "JSON_UNQUOTE(JSON_EXTRACT(User_attributes, '$.additional_password')) "
                "FROM mysql.user WHERE User = %s AND Host = %s",
                who(account),
                f"read the password hashes of {account}",
            )
        )
        if not rows:
            return None
        plugin, primary, secondary = rows[0]
        return StoredPasswords(text_of(plugin), text_of(primary), text_of(secondary) or None)

    def login_limit(self, run: Runner, policy: AccountPolicy | None) -> LoginLimit:
        if not self.features.has_failed_login_lock:
            return LoginLimit()
        if policy is not None:
            return LoginLimit(policy.failed_login_attempts, policy.password_lock_days)
        # One's own SHOW CREATE USER needs no privilege (SELECT ON mysql.* is for others').
        rows = run.execute(Statement("SHOW CREATE USER CURRENT_USER()", (), "read own login limit"))
        found = _FAILED_LOGINS.search(text_of(rows[0][0])) if rows else None
        if found is None:
            return LoginLimit()
        lock = found.group(2)
        return LoginLimit(int(found.group(1)), -1 if lock == "UNBOUNDED" else int(lock))

    def admin_dual_passwords(self) -> DualPasswords:
        if not self.features.supports_dual_password:
            return super().admin_dual_passwords()
        if not self.features.has_account_attributes:
            # Without the attribute that marks the change, a retry could not tell whether
            # the old password is already the secondary, and would make it the new one.
            return DualPasswords(
                True, False, f"MySQL {self.server.version_string} has no account attributes (8.0.21+) to mark it"
            )
        return DualPasswords(True, True, "the admin keeps the current password as the secondary one")

    def revoke_admin_option(self, account: Account, role: RoleGrant) -> list[Statement]:
        # MySQL has no REVOKE ADMIN OPTION FOR: revoke the role, grant it again without.
        plain = RoleGrant(role.role, role.role_host, False)
        return [
            self.revoke_role(account, role),
            Statement(
                f"GRANT {self.role_sql(plain)} TO {WHO}", who(account), f"grant role {plain.describe()} to {account}"
            ),
        ]

    def restriction(self, op: AddRestriction | RemoveRestriction) -> Statement:
        if not self.features.has_partial_revokes:
            raise StatementBuildError(f"MySQL {self.server.version_string} has no partial revokes")
        priv = op.privilege
        target = f"{keyword(priv.privilege)} ON {quote_identifier(priv.schema)}.*"
        if isinstance(op, AddRestriction):
            return Statement(
                f"REVOKE {target} FROM {WHO}", who(op.account), f"partially revoke {priv.describe()} from {op.account}"
            )
        return Statement(
            f"GRANT {target} TO {WHO}",
            who(op.account),
            f"lift the partial revoke of {priv.describe()} from {op.account}",
        )

    def set_policy(self, account: Account, policy: AccountPolicy) -> Statement:
        clauses = [*_password_clauses(policy), *self._login_clauses(policy)]
        return Statement(
            f"ALTER USER {WHO} {' '.join(text for text, _ in clauses)}",
            (*who(account), *(value for _, values in clauses for value in values)),
            f"set password policy of {account}",
        )

    def _login_clauses(self, policy: AccountPolicy) -> list[tuple[str, tuple[int, ...]]]:
        clauses: list[tuple[str, tuple[int, ...]]] = []
        if self.features.supports_password_require_current:
            clauses.append((_REQUIRE_CURRENT[policy.require_current], ()))
        elif policy.require_current is not None:
            raise StatementBuildError(f"MySQL {self.server.version_string} has no PASSWORD REQUIRE CURRENT")
        if self.features.has_failed_login_lock:
            clauses.append(("FAILED_LOGIN_ATTEMPTS %s", (policy.failed_login_attempts,)))
            lock = policy.password_lock_days
            clauses.append(("PASSWORD_LOCK_TIME UNBOUNDED", ()) if lock < 0 else ("PASSWORD_LOCK_TIME %s", (lock,)))
        elif policy.failed_login_attempts:
            raise StatementBuildError(f"MySQL {self.server.version_string} has no FAILED_LOGIN_ATTEMPTS")
        return clauses

    def set_attributes(self, account: Account, patch: str) -> Statement:
        if not self.features.has_account_attributes:
            raise StatementBuildError(f"MySQL {self.server.version_string} has no account attributes")
        return Statement(f"ALTER USER {WHO} ATTRIBUTE %s", (*who(account), patch), f"set attributes of {account}")

    # -- reading -----------------------------------------------------------------------

    def read_user(self, run: Runner, user: str) -> UserEntry:
        try:
            return super().read_user(run, user)
        except DatabaseUnreachableError:
            raise
        except DatabaseError:
            # An admin that may read mysql.user but not the role tables (SELECT on
            # mysql.user only) still lists hosts, as it always could: what it lacks is
            # refused where the pre-flight asks for it (the definitions), and whether the
            # name is a role is then asked on its own (role_named).
            sql = "SELECT Host FROM mysql.user WHERE User = %s ORDER BY Host"
            rows = run.execute(Statement(sql, (user,), f"list hosts of '{user}'"))
            return UserEntry(tuple(str(row[0]) for row in rows), None)

    def role_named(self, run: Runner, name: str) -> bool:
        return bool(run.execute(Statement(self._role_sql, (name,) * 3, f"is '{name}' a role"))[0][0])

    def account_row(self) -> tuple[list[str], list[str], str]:
        columns = [*TLS_COLUMNS, *(LIMIT_OPTIONS[name] for name in self.features.limit_options), *_POLICY_COLUMNS]
        names = ["host", *columns, "account_locked", "expired"]
        expressions = [
            "u.Host",
            *(f"u.{column}" for column in columns),
            "u.account_locked",
            "u.password_expired = 'Y' OR (IFNULL(u.password_lifetime, @@default_password_lifetime) > 0 "
            "AND u.password_last_changed "
            "< NOW() - INTERVAL IFNULL(u.password_lifetime, @@default_password_lifetime) DAY)",
        ]
        return names, expressions, "mysql.user u"

    def complete_profile(self, row: dict[str, Any], held: AccountProfile) -> AccountProfile:
        attributes = attributes_json(row["User_attributes"])
        restrictions = frozenset(
            Privilege(str(name).upper(), str(entry.get("Database", "")))
            for entry in attributes.get("Restrictions", [])
            for name in entry.get("Privileges", [])
        )
        locking = attributes.get("Password_locking", {})
        plugin = text_of(row["plugin"])
        factors = attributes.get("multi_factor_authentication")
        if isinstance(factors, list) and len(factors) > 1:
            plugin = " AND ".join(str(factor.get("plugin", "")) for factor in factors)
        metadata = attributes.get("metadata")
        return held._replace(
            tls=tls_from(row),
            limits=tuple((name, limit_value(row[LIMIT_OPTIONS[name]])) for name in self.features.limit_options),
            restrictions=restrictions,
            plugin=plugin,
            policy=AccountPolicy(
                password_lifetime=_optional_int(row["password_lifetime"]),
                password_history=_optional_int(row["Password_reuse_history"]),
                password_reuse_days=_optional_int(row["Password_reuse_time"]),
                require_current={"Y": True, "N": False}.get(text_of(row["Password_require_current"])),
                failed_login_attempts=int(locking.get("failed_login_attempts", 0)),
                password_lock_days=int(locking.get("password_lock_time_days", 0)),
                attributes=canonical_attributes(json.dumps(metadata)) if metadata else "",
            ),
        )

    def state_from(self, row: dict[str, Any]) -> AccountState:
        return AccountState(locked=text_of(row["account_locked"]) == "Y", password_expired=bool(row["expired"]))


_REQUIRE_CURRENT = {
    None: "PASSWORD REQUIRE CURRENT DEFAULT",
    True: "PASSWORD REQUIRE CURRENT",
    False: "PASSWORD REQUIRE CURRENT OPTIONAL",
}


def _password_clauses(policy: AccountPolicy) -> list[tuple[str, tuple[int, ...]]]:
    """PASSWORD EXPIRE / HISTORY / REUSE INTERVAL, each DEFAULT when the account has none of its own."""
    lifetime, history, reuse = policy.password_lifetime, policy.password_history, policy.password_reuse_days
    return [
        ("PASSWORD EXPIRE DEFAULT", ())
        if lifetime is None
        else ("PASSWORD EXPIRE NEVER", ())
        if lifetime == 0
        else ("PASSWORD EXPIRE INTERVAL %s DAY", (lifetime,)),
        ("PASSWORD HISTORY DEFAULT", ()) if history is None else ("PASSWORD HISTORY %s", (history,)),
        ("PASSWORD REUSE INTERVAL DEFAULT", ()) if reuse is None else ("PASSWORD REUSE INTERVAL %s DAY", (reuse,)),
    ]


def _optional_int(value: Any) -> int | None:
    return None if value is None else int(value)
