"""Account profiles: differences and the statements that remove them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from rotator.accounts import (
    GRANT_OPTION,
    Account,
    AccountProfile,
    Privilege,
    RoleGrant,
    TlsRequirement,
    differences,
    sync_statements,
)
from rotator.sql import keyword, quote_identifier

TWIN = Account("app_clone", "10.%")


def sqls(source: AccountProfile, twin: AccountProfile) -> list[tuple[str, tuple[object, ...]]]:
    return [(s.sql, s.params) for s in sync_statements(source, twin, TWIN)]


def test_identical_profiles_need_no_statement() -> None:
    """A twin that already matches is left alone: no revoke/grant churn."""
    profile = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb")}))
    assert sqls(profile, profile) == []
    assert differences(profile, profile) == []


def test_missing_privileges_are_granted_and_extras_revoked_first() -> None:
    """Extras are revoked before missing privileges are granted, all bound to the twin account."""
    source = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb"), Privilege("INSERT", "appdb", "t")}))
    twin = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb"), Privilege("DROP", "")}))
    assert sqls(source, twin) == [
        ("REVOKE DROP ON *.* FROM %s@%s", ("app_clone", "10.%")),
        ("GRANT INSERT ON `appdb`.`t` TO %s@%s", ("app_clone", "10.%")),
    ]
    assert differences(source, twin) == ["missing INSERT ON `appdb`.`t`", "extra DROP ON *.*"]


def test_grant_option_column_and_routine_privileges() -> None:
    """Grant option, column and routine privileges each get their own syntax."""
    source = AccountProfile(
        privileges=frozenset(
            {
                Privilege(GRANT_OPTION, "appdb"),
                Privilege("SELECT", "appdb", "t", "c`1"),
                Privilege("EXECUTE", "appdb", "proc", "", "PROCEDURE"),
            }
        )
    )
    assert sorted(sqls(source, AccountProfile())) == sorted(
        [
            ("GRANT USAGE ON `appdb`.* TO %s@%s WITH GRANT OPTION", ("app_clone", "10.%")),
            ("GRANT SELECT (`c``1`) ON `appdb`.`t` TO %s@%s", ("app_clone", "10.%")),
            ("GRANT EXECUTE ON PROCEDURE `appdb`.`proc` TO %s@%s", ("app_clone", "10.%")),
        ]
    )
    assert sqls(AccountProfile(), source)[0] == ("REVOKE EXECUTE ON PROCEDURE `appdb`.`proc` FROM %s@%s", TWIN_PARAMS)


TWIN_PARAMS = ("app_clone", "10.%")


def test_roles_admin_option_and_default_roles() -> None:
    """Roles are granted with their admin option, extra roles revoked, default role set."""
    source = AccountProfile(roles=frozenset({RoleGrant("reader", "", True)}), default_roles=frozenset({("reader", "")}))
    twin = AccountProfile(roles=frozenset({RoleGrant("writer")}))
    assert sqls(source, twin) == [
        ("REVOKE `writer` FROM %s@%s", TWIN_PARAMS),
        ("GRANT `reader` TO %s@%s WITH ADMIN OPTION", TWIN_PARAMS),
        ("SET DEFAULT ROLE `reader` FOR %s@%s", TWIN_PARAMS),
    ]
    # Admin option only on the twin: take it away without revoking the role.
    assert sqls(
        AccountProfile(roles=frozenset({RoleGrant("r")})), AccountProfile(roles=frozenset({RoleGrant("r", "", True)}))
    ) == [("REVOKE ADMIN OPTION FOR `r` FROM %s@%s", TWIN_PARAMS)]
    assert sqls(AccountProfile(), AccountProfile(default_roles=frozenset({("r", "")}))) == [
        ("SET DEFAULT ROLE NONE FOR %s@%s", TWIN_PARAMS)
    ]


def test_mysql8_roles_are_accounts() -> None:
    """MySQL 8 roles carry a host and are written `role`@`host`."""
    source = AccountProfile(roles=frozenset({RoleGrant("r", "%")}))
    assert sqls(source, AccountProfile()) == [("GRANT `r`@`%` TO %s@%s", TWIN_PARAMS)]


@pytest.mark.parametrize(
    ("tls", "clause", "params"),
    [
        (TlsRequirement(), "NONE", ()),
        (TlsRequirement("ANY"), "SSL", ()),
        (TlsRequirement("X509"), "X509", ()),
        (TlsRequirement("SPECIFIED", cipher="AES", subject="/CN=app"), "SUBJECT %s AND CIPHER %s", ("/CN=app", "AES")),
    ],
)
def test_tls_requirement_is_copied_with_bound_values(tls: TlsRequirement, clause: str, params: tuple[str, ...]) -> None:
    """REQUIRE clauses are rebuilt from mysql.user with issuer/subject/cipher bound as values."""
    twin_tls = TlsRequirement("X509") if tls != TlsRequirement("X509") else TlsRequirement()
    assert sqls(AccountProfile(tls=tls), AccountProfile(tls=twin_tls)) == [
        (f"ALTER USER %s@%s REQUIRE {clause}", (*TWIN_PARAMS, *params))
    ]


def test_resource_limits_are_bound_values() -> None:
    """Resource limits are set in one ALTER USER with the numbers bound."""
    limits = (("MAX_QUERIES_PER_HOUR", 10), ("MAX_USER_CONNECTIONS", 3), ("MAX_STATEMENT_TIME", Decimal("2.5")))
    assert sqls(AccountProfile(limits=limits), AccountProfile()) == [
        (
            "ALTER USER %s@%s WITH MAX_QUERIES_PER_HOUR %s MAX_USER_CONNECTIONS %s MAX_STATEMENT_TIME %s",
            (*TWIN_PARAMS, 10, 3, Decimal("2.5")),
        )
    ]
    assert differences(AccountProfile(limits=limits), AccountProfile()) == ["resource limits differ"]


def test_identifiers_are_quoted_and_keywords_checked() -> None:
    """Names with backticks are escaped; anything but a plain keyword is refused."""
    assert quote_identifier("we`ird") == "`we``ird`"
    assert keyword("create temporary tables") == "CREATE TEMPORARY TABLES"
    with pytest.raises(ValueError, match="unexpected SQL keyword"):
        keyword("SELECT; DROP TABLE x")
    with pytest.raises(ValueError, match="NUL"):
        quote_identifier("a\x00b")
