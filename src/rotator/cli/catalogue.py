"""Read-only questions about the admin account that only ``rotator check`` asks.

:class:`AdminView` extends the function's own admin session (same connection, same
error mapping, same profile reader) with two queries the rotation never needs:
which account the server matched the admin to, and the global privileges of a
MariaDB role, which ``information_schema.USER_PRIVILEGES`` does not list (it lists
users only; a role's schema and table privileges do appear in the other views).
"""

from __future__ import annotations

from typing import Any

from rotator.accounts import GRANT_OPTION, Account, Privilege
from rotator.mysql import AdminSession
from rotator.sql import Statement

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


class AdminView(AdminSession):
    @classmethod
    def of(cls, session: AdminSession) -> AdminView:
        """The same open connection, seen through this class."""
        return cls(session._session, session._secret_id)

    def current_account(self) -> Account:
        """The account the server matched this login to (``CURRENT_USER()``)."""
        user, _, host = str(self._session.scalar("SELECT CURRENT_USER()")).rpartition("@")
        return Account(user, host)

    def role_privileges(self, role: Account) -> set[Privilege]:
        """Everything a role holds: its profile, plus (MariaDB) its global privileges."""
        held = set(self.read_profile(role).privileges)
        if self.server.is_mariadb:
            columns = ", ".join(column for column, _ in _GLOBAL_COLUMNS)
            rows = self._session.execute(
                Statement(
                    f"SELECT {columns} FROM mysql.user WHERE User = %s AND Host = %s AND is_role = 'Y'",  # noqa: S608 - constant columns
                    (role.user, role.host),
                    f"read global privileges of role {role}",
                )
            )
            for row in rows[:1]:
                held |= {Privilege(name) for (_, name), value in zip(_GLOBAL_COLUMNS, row, strict=True) if _yes(value)}
        return held


def _yes(value: Any) -> bool:
    if isinstance(value, bytes | bytearray):
        value = value.decode()
    return str(value).upper() == "Y"
