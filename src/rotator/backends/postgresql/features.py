"""What one PostgreSQL server can do, derived once from ``server_version_num``.

The backend asks these named capabilities and never compares versions itself (as
Django's ``DatabaseFeatures``). The line that matters most is 16: role membership got
per-grant options and CREATEROLE stopped implying power over every role.
"""

from __future__ import annotations

from typing import NamedTuple


class Features(NamedTuple):
    version_num: int  # server_version_num: 150020, 180006

    @property
    def major(self) -> int:
        return self.version_num // 10000

    @property
    def membership_options(self) -> bool:
        """``GRANT r TO u WITH ADMIN x, INHERIT y, SET z`` and pg_auth_members'
        ``inherit_option``/``set_option`` (16+). Before: ADMIN only; the member's
        ``rolinherit`` decides inheritance."""
        return self.version_num >= 160000

    @property
    def createrole_needs_admin_option(self) -> bool:
        """16+: CREATEROLE acts only on roles the admin holds ADMIN OPTION on (it gets it on
        roles it creates); granting a role needs ADMIN OPTION on it too. 15: CREATEROLE
        may alter and grant every non-superuser role."""
        return self.version_num >= 160000

    @property
    def privileged_attributes_need_own(self) -> bool:
        """REPLICATION and BYPASSRLS: 16+ a role that has the attribute may give it;
        15 only a superuser."""
        return self.version_num >= 160000
