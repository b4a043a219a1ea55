"""MariaDB (10.4 and later): roles without hosts, one default role, no dynamic
privileges, password expiry as the only per-account password policy.

Accounts live in ``mysql.global_priv`` (one JSON document per account; ``mysql.user``
is a view over it): the plugin, an ``OR`` chain of plugins, the password lifetime,
the lock and the expiry are read from the JSON.
"""

from __future__ import annotations

import json
from typing import Any, ClassVar

from rotator.accounts import (
    GRANT_OPTION,
    LIMIT_OPTIONS,
    Account,
    AccountPolicy,
    AccountProfile,
    AccountState,
    ChangeOwnPassword,
    Privilege,
    RoleGrant,
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
    limit_value,
    text_of,
    tls_from,
    who,
)
from rotator.errors import StatementBuildError
from rotator.ports import LoginLimit
from rotator.sql import Statement, plugin_name

NATIVE = "mysql_native_password"
# max_password_errors' default, "no limit".
_NO_LIMIT = 4294967295
_LIMITS = ("MAX_QUERIES_PER_HOUR", "MAX_UPDATES_PER_HOUR", "MAX_CONNECTIONS_PER_HOUR", "MAX_USER_CONNECTIONS")


class MariaDB(Dialect):
    family: ClassVar[str] = "mariadb"
    # A role is a row of mysql.user with is_role = 'Y' (and no login account).
    user_sql: ClassVar[str] = (
        "SELECT Host, IF(is_role = 'Y', 'role', 'account') FROM mysql.user WHERE User = %s ORDER BY Host"
    )
    user_sql_names: ClassVar[int] = 1
    privileges_sql: ClassVar[str] = INFORMATION_SCHEMA_PRIVILEGES
    privileges_accounts: ClassVar[int] = 0
    edges_sql: ClassVar[str] = (
        "SELECT 'role', Role, '', Admin_option, '', '' FROM mysql.roles_mapping WHERE User = %s AND Host = %s "  # noqa: S608 - constant text
        f"UNION ALL {ROUTINES_AND_PROXIES}"
    )
    edges_parts: ClassVar[int] = 3

    @classmethod
    def make_features(cls, version: tuple[int, int, int]) -> Features:
        return Features(
            family=cls.family,
            roles_have_hosts=False,
            multiple_default_roles=False,
            default_role_syntax="FOR",
            has_dynamic_privileges=False,
            has_partial_revokes=False,
            has_revoke_admin_option=True,
            supports_password_require_current=False,
            supports_dual_password=False,
            has_password_reuse_policy=False,
            has_failed_login_lock=False,
            has_account_attributes=False,
            has_proxy_grants=True,
            password_plugins=frozenset({NATIVE, "ed25519"}),
            limit_options=(*_LIMITS, "MAX_STATEMENT_TIME"),
            fallback_max_username_length=80,
        )

    # -- rendering -------------------------------------------------------------------

    def identified(self, plugin: str) -> str:
        if plugin in ("", NATIVE):
            return "IDENTIFIED BY %s"
        return f"IDENTIFIED VIA {plugin_name(plugin)} USING PASSWORD(%s)"

    def change_own_password(self, op: ChangeOwnPassword) -> Statement:
        # MariaDB requires CREATE USER for ALTER USER even on one's own account.
        if op.retain_current:
            raise StatementBuildError("MariaDB has no dual passwords")
        return Statement("SET PASSWORD = PASSWORD(%s)", (op.password,), "set own password")

    def revoke_admin_option(self, account: Account, role: RoleGrant) -> list[Statement]:
        return [
            Statement(
                f"REVOKE ADMIN OPTION FOR {self.role_sql(role)} FROM {WHO}",
                who(account),
                f"revoke admin option for role {role.describe()} from {account}",
            )
        ]

    def set_policy(self, account: Account, policy: AccountPolicy) -> Statement:
        mysql_only = AccountPolicy(password_lifetime=policy.password_lifetime, attributes=policy.attributes)
        if policy != mysql_only:
            raise StatementBuildError("MariaDB has no password history, reuse, REQUIRE CURRENT or failed-login lock")
        expire, params = _expire_clause(policy.password_lifetime)
        return Statement(
            f"ALTER USER {WHO} PASSWORD EXPIRE {expire}", (*who(account), *params), f"set password policy of {account}"
        )

    # -- reading -----------------------------------------------------------------------

    def account_row(self) -> tuple[list[str], list[str], str]:
        columns = [*TLS_COLUMNS, *(LIMIT_OPTIONS[name] for name in self.features.limit_options)]
        columns += ["default_role", "is_role"]
        # The JSON document of mysql.global_priv holds the plugin, lifetime, lock and
        # expiry; the server's default lifetime and clock say whether it has run out.
        names = ["host", *columns, "priv", "default_lifetime", "now"]
        expressions = [
            "u.Host",
            *(f"u.{column}" for column in columns),
            "g.Priv",
            "@@default_password_lifetime",
            "UNIX_TIMESTAMP()",
        ]
        return names, expressions, "(mysql.user u JOIN mysql.global_priv g ON g.User = u.User AND g.Host = u.Host)"

    def row_is_role(self, row: dict[str, Any]) -> bool:
        return text_of(row.get("is_role")) == "Y"

    def complete_profile(self, row: dict[str, Any], held: AccountProfile) -> AccountProfile:
        priv = _priv_json(row)
        defaults = set(held.default_roles)
        if row["default_role"]:  # MariaDB keeps the one default role in the account
            defaults.add((text_of(row["default_role"]), ""))
        lifetime = priv.get("password_lifetime", -1)
        return held._replace(
            default_roles=frozenset(defaults),
            tls=tls_from(row),
            limits=tuple((name, limit_value(row[LIMIT_OPTIONS[name]])) for name in self.features.limit_options),
            plugin=_plugin(priv),
            policy=AccountPolicy(password_lifetime=None if lifetime is None or lifetime < 0 else int(lifetime)),
        )

    def state_from(self, row: dict[str, Any]) -> AccountState:
        priv = _priv_json(row)
        changed = priv.get("password_last_changed")
        lifetime = priv.get("password_lifetime", -1)
        days = int(row["default_lifetime"] or 0) if lifetime is None or lifetime < 0 else int(lifetime)
        expired = changed == 0 or (days > 0 and changed is not None and changed + days * 86400 < int(row["now"]))
        return AccountState(locked=bool(priv.get("account_locked")), password_expired=expired)

    def stored_passwords(self, run: Runner, account: Account) -> StoredPasswords | None:
        rows = run.execute(
            Statement(
                "SELECT Priv FROM mysql.global_priv WHERE User = %s AND Host = %s",
                who(account),
                f"read the password hashes of {account}",
            )
        )
        if not rows:
            return None
        priv = json.loads(text_of(rows[0][0]) or "{}")
        # A chain of plugins (IDENTIFIED VIA a OR b) is not one password: _plugin names it whole.
        return StoredPasswords(_plugin(priv), str(priv.get("authentication_string", "")), None)

    def login_limit(self, run: Runner, policy: AccountPolicy | None) -> LoginLimit:
        # Global (every account alike), readable by anyone; an account stays blocked
        # until FLUSH PRIVILEGES.
        rows = run.execute(Statement("SELECT @@max_password_errors", (), "read max_password_errors"))
        value = int(rows[0][0]) if rows and rows[0][0] is not None else _NO_LIMIT
        return LoginLimit(0 if value >= _NO_LIMIT else value, -1, "server")

    def role_privileges(self, run: Runner, role: Account, profile: AccountProfile) -> set[Privilege]:
        """A MariaDB role's global privileges are not in information_schema: read mysql.user."""
        held = set(profile.privileges)
        columns = ", ".join(column for column, _ in _GLOBAL_COLUMNS)
        rows = run.execute(
            Statement(
                f"SELECT {columns} FROM mysql.user WHERE User = %s AND Host = %s AND is_role = 'Y'",  # noqa: S608 - constant columns
                who(role),
                f"read global privileges of role {role}",
            )
        )
        for row in rows[:1]:
            held |= {
                Privilege(name) for (_, name), value in zip(_GLOBAL_COLUMNS, row, strict=True) if text_of(value) == "Y"
            }
        return held


def _expire_clause(lifetime: int | None) -> tuple[str, tuple[int, ...]]:
    if lifetime is None:
        return "DEFAULT", ()
    if lifetime == 0:
        return "NEVER", ()
    return "INTERVAL %s DAY", (lifetime,)


def _priv_json(row: dict[str, Any]) -> dict[str, Any]:
    value = json.loads(text_of(row.get("priv")) or "{}")
    return value if isinstance(value, dict) else {}


def _plugin(priv: dict[str, Any]) -> str:
    plugin = str(priv.get("plugin", ""))
    chain = priv.get("auth_or")
    if isinstance(chain, list) and chain:
        # IDENTIFIED VIA a OR b: each entry names its plugin; an empty entry is the main one.
        return " OR ".join(str(entry.get("plugin", plugin)) if entry else plugin for entry in chain)
    return plugin


# mysql.user's global privilege columns (MariaDB 10.4+) and the names
# information_schema gives the same privileges.
_GLOBAL_COLUMNS = (
    ("Select_priv", "SELECT"),
    ("Insert_priv", "INSERT"),
    ("Update_priv", "UPDATE"),
    ("Delete_priv", "DELETE"),
    ("Create_priv", "CREATE"),
    ("Drop_priv", "DROP"),
    ("Reload_priv", "RELOAD"),
    ("Shutdown_priv", "SHUTDOWN"),
    ("Process_priv", "PROCESS"),
    ("File_priv", "FILE"),
    ("Grant_priv", GRANT_OPTION),
    ("References_priv", "REFERENCES"),
    ("Index_priv", "INDEX"),
    ("Alter_priv", "ALTER"),
    ("Show_db_priv", "SHOW DATABASES"),
    ("Super_priv", "SUPER"),
    ("Create_tmp_table_priv", "CREATE TEMPORARY TABLES"),
    ("Lock_tables_priv", "LOCK TABLES"),
    ("Execute_priv", "EXECUTE"),
    ("Repl_slave_priv", "REPLICATION SLAVE"),
    ("Repl_client_priv", "BINLOG MONITOR"),
    ("Create_view_priv", "CREATE VIEW"),
    ("Show_view_priv", "SHOW VIEW"),
    ("Create_routine_priv", "CREATE ROUTINE"),
    ("Alter_routine_priv", "ALTER ROUTINE"),
    ("Create_user_priv", "CREATE USER"),
    ("Event_priv", "EVENT"),
    ("Trigger_priv", "TRIGGER"),
    ("Create_tablespace_priv", "CREATE TABLESPACE"),
)
