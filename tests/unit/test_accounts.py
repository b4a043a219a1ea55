"""Account profiles: their differences and the typed operations that remove them (no SQL here)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from aws_lambda_powertools import Logger

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
    attributes_patch,
    canonical_attributes,
    differences,
    sync_operations,
)

TWIN = Account("app_clone", "10.%")


def test_an_operation_equals_only_the_same_operation() -> None:
    """Operations are tuples underneath; a grant must still never pass for a revoke."""
    select = Privilege("SELECT", "appdb")
    grant, revoke = GrantPrivilege(TWIN, select), RevokePrivilege(TWIN, select)
    assert grant == GrantPrivilege(TWIN, select) and hash(grant) == hash(GrantPrivilege(TWIN, select))
    assert grant != revoke and [grant] != [revoke] and len({grant, revoke}) == 2
    assert grant != (TWIN, select)


def test_no_operation_shows_a_password_in_its_repr_or_a_log_line(capsys: pytest.CaptureFixture[str]) -> None:
    """Also when one ends up in a log record: Powertools serialises ``extra`` as JSON,
    which would write a tuple's fields out as a list (hence dataclasses for these)."""
    operations = [
        CreateUser(TWIN, "Pw-new-1"),
        SetPassword(TWIN, "Pw-new-1", "caching_sha2_password", retain_current=True),
        ChangeOwnPassword("Pw-new-1", "Pw-old-2"),
    ]
    Logger(service="rotator-test").info("operations", extra={"operations": operations})
    logged = capsys.readouterr().out
    shown = " ".join(map(repr, operations)) + " ".join(map(str, operations))
    assert "Pw-new-1" not in shown and "Pw-old-2" not in shown
    assert "Pw-new-1" not in logged and "Pw-old-2" not in logged and "SetPassword(account=" in logged
    assert "SetPassword(account=Account(user='app_clone', host='10.%'), plugin=" in shown


def test_identical_profiles_need_no_operation() -> None:
    """A twin that already matches is left alone: no revoke/grant churn."""
    profile = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb")}), plugin="caching_sha2_password")
    assert sync_operations(profile, profile, TWIN) == []
    assert differences(profile, profile) == []


def test_missing_privileges_are_granted_and_extras_revoked_first() -> None:
    """Extras are revoked before missing privileges are granted."""
    source = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb"), Privilege("INSERT", "appdb", "t")}))
    twin = AccountProfile(privileges=frozenset({Privilege("SELECT", "appdb"), Privilege("DROP", "")}))
    assert sync_operations(source, twin, TWIN) == [
        RevokePrivilege(TWIN, Privilege("DROP")),
        GrantPrivilege(TWIN, Privilege("INSERT", "appdb", "t")),
    ]
    assert differences(source, twin) == ["missing INSERT ON `appdb`.`t`", "extra DROP ON *.*"]


def test_a_dynamic_privilege_s_own_grant_option_is_a_difference() -> None:
    """XA_RECOVER_ADMIN with and without its own grant option differ: revoke, then grant it as the user has it."""
    with_option = Privilege("XA_RECOVER_ADMIN", dynamic=True, grantable=True)
    without = Privilege("XA_RECOVER_ADMIN", dynamic=True)
    source, twin = AccountProfile(privileges=frozenset({with_option})), AccountProfile(privileges=frozenset({without}))
    assert sync_operations(source, twin, TWIN) == [RevokePrivilege(TWIN, without), GrantPrivilege(TWIN, with_option)]
    assert differences(source, twin) == [
        "missing XA_RECOVER_ADMIN ON *.* WITH GRANT OPTION",
        "extra XA_RECOVER_ADMIN ON *.*",
    ]


def test_partial_revokes_follow_the_global_grant_they_restrict() -> None:
    """A restriction is added after the global grant; one whose global privilege goes away is not lifted by a grant."""
    select = Privilege("SELECT")
    source = AccountProfile(privileges=frozenset({select}), restrictions=frozenset({Privilege("SELECT", "mysql")}))
    assert sync_operations(source, AccountProfile(), TWIN) == [
        GrantPrivilege(TWIN, select),
        AddRestriction(TWIN, Privilege("SELECT", "mysql")),
    ]
    assert sync_operations(AccountProfile(privileges=frozenset({select})), source, TWIN) == [
        RemoveRestriction(TWIN, Privilege("SELECT", "mysql"))
    ]
    # The twin's global SELECT is revoked: its restriction goes with it, nothing to lift.
    assert sync_operations(AccountProfile(), source, TWIN) == [RevokePrivilege(TWIN, select)]
    assert differences(source, AccountProfile(privileges=frozenset({select}))) == [
        "missing partial revoke of SELECT ON `mysql`.*"
    ]


def test_roles_admin_option_and_default_roles() -> None:
    """Roles are granted with their admin option, extra roles revoked, default roles set; an admin
    option held only by the twin is taken away without revoking the role."""
    source = AccountProfile(roles=frozenset({RoleGrant("reader", "", True)}), default_roles=frozenset({("reader", "")}))
    twin = AccountProfile(roles=frozenset({RoleGrant("writer")}))
    assert sync_operations(source, twin, TWIN) == [
        RevokeRole(TWIN, RoleGrant("writer")),
        GrantRole(TWIN, RoleGrant("reader", "", True)),
        SetDefaultRoles(TWIN, (("reader", ""),)),
    ]
    assert sync_operations(
        AccountProfile(roles=frozenset({RoleGrant("r", "%")})),
        AccountProfile(roles=frozenset({RoleGrant("r", "%", True)})),
        TWIN,
    ) == [RevokeAdminOption(TWIN, RoleGrant("r", "%"))]
    assert sync_operations(AccountProfile(), AccountProfile(default_roles=frozenset({("r", "")})), TWIN) == [
        SetDefaultRoles(TWIN, ())
    ]


def test_proxy_grants_tls_limits_and_policies() -> None:
    """Proxy grants, the TLS requirement, limits, password policy and attributes each become one operation."""
    proxy = ProxyGrant("reporting", "%", True)
    policy = AccountPolicy(password_lifetime=30, password_history=4, failed_login_attempts=3, attributes='{"team":"x"}')
    limits = (("MAX_QUERIES_PER_HOUR", 10), ("MAX_STATEMENT_TIME", Decimal("2.5")))
    source = AccountProfile(
        proxies=frozenset({proxy}), tls=TlsRequirement("ANY"), limits=limits, policy=policy, plugin="p"
    )
    twin = AccountProfile(proxies=frozenset({ProxyGrant("old", "%")}), plugin="p")
    assert sync_operations(source, twin, TWIN) == [
        RevokeProxy(TWIN, ProxyGrant("old", "%")),
        GrantProxy(TWIN, proxy),
        RequireTls(TWIN, TlsRequirement("ANY")),
        SetLimits(TWIN, limits),
        SetPasswordPolicy(TWIN, policy),
        SetAttributes(TWIN, '{"team":"x"}'),
    ]
    assert differences(source, twin) == [
        "missing PROXY ON 'reporting'@'%' WITH GRANT OPTION",
        "extra PROXY ON 'old'@'%'",
        "TLS requirement differs (ANY vs NONE)",
        "resource limits differ",
        "password policy differs (expiry, history, reuse, REQUIRE CURRENT or failed-login lock)",
        "account attributes or comment differ",
    ]


def test_plugin_difference_is_reported() -> None:
    """A twin on another authentication plugin than the user is a difference testSecret sees."""
    assert differences(
        AccountProfile(plugin="mysql_native_password"), AccountProfile(plugin="caching_sha2_password")
    ) == ["authentication plugin differs (mysql_native_password vs caching_sha2_password)"]


def test_attribute_patch_removes_what_the_twin_has_in_excess() -> None:
    """MySQL merges ATTRIBUTE objects: the patch nulls the twin's extra keys, nested ones included."""
    source = canonical_attributes('{"team": "x", "comment": "app", "tags": {"a": 1}}')
    twin = canonical_attributes('{"team": "y", "owner": "z", "tags": {"a": 1, "b": 2}}')
    assert json.loads(attributes_patch(source, twin)) == {
        "comment": "app",
        "owner": None,
        "tags": {"a": 1, "b": None},
        "team": "x",
    }
    assert canonical_attributes("{}") == "" and canonical_attributes(None) == ""


def test_grant_option_is_its_own_privilege_per_object() -> None:
    """A static grant option is held per object, apart from the privileges it goes with."""
    source = AccountProfile(privileges=frozenset({Privilege(GRANT_OPTION, "appdb"), Privilege("SELECT", "appdb")}))
    assert sync_operations(source, AccountProfile(), TWIN) == [
        GrantPrivilege(TWIN, Privilege(GRANT_OPTION, "appdb")),
        GrantPrivilege(TWIN, Privilege("SELECT", "appdb")),
    ]
