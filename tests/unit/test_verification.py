"""testSecret's independent reading (rotator.backends.mysql.definitions) and the comparison (rotator.comparison):
SHOW CREATE USER / SHOW GRANTS output taken apart, normalised and compared.

Every line below was printed by a real server (MariaDB 10.11.19 and MySQL 9.7.4, the
versions of `make test`), captured with PyMySQL as rotator reads it; where a test
changes a line, it changes it into what the server prints for the changed account.
"""

from __future__ import annotations

import dataclasses

import pytest

from rotator import comparison
from rotator.backends.mysql.definitions import PrintedDefinition, definition, normalise
from rotator.comparison import check_readable, compare, verify_copy
from rotator.errors import PrivilegeMismatchError, UnsupportedDatabaseError

SECRET = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db-AbCdEf"

# -- MySQL 9.7.4: an account using most of what an account can have -------------------------
# The user and its twin were made with the same statements in opposite orders, each with
# its own password (caching_sha2_password: a salted hash with raw control characters).
MYSQL_APP = PrintedDefinition(
    create_user="CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS "
    "'$A$00A$\x0f\x12-`X4RI.\x7f@\x0fYR\tX,i\x1b\x19Zc8Zi20QmO.03q7nvuvbPzLnt8iEbeq5vV10Zk.6qy7' "
    "DEFAULT ROLE `r1`@`%`,`r2`@`%` REQUIRE SUBJECT '/CN=app' ISSUER '/C=FI/O=Acme' WITH MAX_QUERIES_PER_HOUR 5000 "
    "MAX_USER_CONNECTIONS 20 PASSWORD EXPIRE INTERVAL 90 DAY ACCOUNT UNLOCK PASSWORD HISTORY 5 PASSWORD REUSE "
    "INTERVAL 30 DAY PASSWORD REQUIRE CURRENT FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME 2 "
    'ATTRIBUTE \'{"comment": "billing"}\'',
    grants=(
        "GRANT SELECT ON *.* TO `app`@`%`",
        "GRANT BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `app`@`%`",
        "GRANT XA_RECOVER_ADMIN ON *.* TO `app`@`%` WITH GRANT OPTION",
        "GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%`",
        "REVOKE SELECT ON `mysql`.* FROM `app`@`%`",
        "GRANT SELECT (`a`, `c`), INSERT, UPDATE (`b`) ON `appdb`.`t` TO `app`@`%` WITH GRANT OPTION",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO `app`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app`@`%`",
        "GRANT `r2`@`%` TO `app`@`%`",
        "GRANT `r1`@`%` TO `app`@`%` WITH ADMIN OPTION",
    ),
)
MYSQL_TWIN = PrintedDefinition(
    create_user="CREATE USER `app_clone`@`%` IDENTIFIED WITH 'caching_sha2_password' AS "
    "'$A$00A$\\rYR:\x1f\x14\x076F\x08O~p_\x17\x14S\\\\reoXpau55MgdvK5O/8JhiHRC4TVDa4MMVB1.PVJFPop0B' "
    "DEFAULT ROLE `r1`@`%`,`r2`@`%` REQUIRE SUBJECT '/CN=app' ISSUER '/C=FI/O=Acme' WITH MAX_QUERIES_PER_HOUR 5000 "
    "MAX_USER_CONNECTIONS 20 PASSWORD EXPIRE INTERVAL 90 DAY ACCOUNT UNLOCK PASSWORD HISTORY 5 PASSWORD REUSE "
    "INTERVAL 30 DAY PASSWORD REQUIRE CURRENT FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME 2 "
    'ATTRIBUTE \'{"comment": "billing"}\'',
    grants=(
        "GRANT SELECT ON *.* TO `app_clone`@`%`",
        "GRANT BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO `app_clone`@`%`",
        "GRANT XA_RECOVER_ADMIN ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT SELECT, INSERT ON `appdb`.* TO `app_clone`@`%`",
        "REVOKE SELECT ON `mysql`.* FROM `app_clone`@`%`",
        "GRANT SELECT (`a`, `c`), INSERT, UPDATE (`b`) ON `appdb`.`t` TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO `app_clone`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%`",
        "GRANT `r2`@`%` TO `app_clone`@`%`",
        "GRANT `r1`@`%` TO `app_clone`@`%` WITH ADMIN OPTION",
    ),
)
MYSQL_HASHES = ("$A$00A$\x0f\x12-`X4RI", "$A$00A$\\rYR", "6qy7", "PVJFPop0B")

# -- MariaDB 10.11.19: the same account (MariaDB's own features where they differ) --------
# The twin's role lines came out in the other order.
MARIADB_APP = PrintedDefinition(
    create_user="CREATE USER `app`@`%` IDENTIFIED BY PASSWORD '*8AC07B9FC3C14045B998258AE0EA26253B310CE7' "
    "REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
    "MAX_STATEMENT_TIME 2.500000 PASSWORD EXPIRE INTERVAL 90 DAY",
    grants=(
        "GRANT `r1` TO `app`@`%` WITH ADMIN OPTION",
        "GRANT `r2` TO `app`@`%`",
        "GRANT USAGE ON *.* TO `app`@`%` IDENTIFIED BY PASSWORD '*8AC07B9FC3C14045B998258AE0EA26253B310CE7' "
        "REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
        "MAX_STATEMENT_TIME 2.500000",
        "GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%`",
        "GRANT SELECT (`a`, `c`), INSERT, UPDATE (`b`) ON `appdb`.`t` TO `app`@`%` WITH GRANT OPTION",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO `app`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app`@`%`",
        "SET DEFAULT ROLE `r1` FOR `app`@`%`",
    ),
)
MARIADB_TWIN = PrintedDefinition(
    create_user="CREATE USER `app_clone`@`%` IDENTIFIED BY PASSWORD '*A5DC37D863527A3AD50B55494F4D941813397080' "
    "REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
    "MAX_STATEMENT_TIME 2.500000 PASSWORD EXPIRE INTERVAL 90 DAY",
    grants=(
        "GRANT `r2` TO `app_clone`@`%`",
        "GRANT `r1` TO `app_clone`@`%` WITH ADMIN OPTION",
        "GRANT USAGE ON *.* TO `app_clone`@`%` IDENTIFIED BY PASSWORD '*A5DC37D863527A3AD50B55494F4D941813397080' "
        "REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
        "MAX_STATEMENT_TIME 2.500000",
        "GRANT SELECT, INSERT ON `appdb`.* TO `app_clone`@`%`",
        "GRANT SELECT (`a`, `c`), INSERT, UPDATE (`b`) ON `appdb`.`t` TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO `app_clone`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%`",
        "SET DEFAULT ROLE `r1` FOR `app_clone`@`%`",
    ),
)
MARIADB_HASHES = ("8AC07B9FC3C14045B998258AE0EA26253B310CE7", "A5DC37D863527A3AD50B55494F4D941813397080")

PAIRS = {"mysql": (MYSQL_APP, MYSQL_TWIN), "mariadb": (MARIADB_APP, MARIADB_TWIN)}


def lines(definition: PrintedDefinition, user: str = "app", host: str = "%") -> tuple[str, ...]:
    return normalise(definition, user, host, SECRET)


def differs(user: PrintedDefinition, twin: PrintedDefinition) -> tuple[list[str], list[str]]:
    return compare(lines(user), lines(twin, "app_clone"))


def changed(definition: PrintedDefinition, old: str, new: str) -> PrintedDefinition:
    """``definition`` with ``old`` replaced by ``new`` in whichever line holds it (exactly one)."""
    texts = [definition.create_user, *definition.grants]
    assert sum(old in text for text in texts) == 1, f"{old!r} is not in exactly one line"
    texts = [text.replace(old, new) for text in texts]
    return PrintedDefinition(create_user=texts[0], grants=tuple(texts[1:]))


def with_grants(definition: PrintedDefinition, *extra: str, without: str = "") -> PrintedDefinition:
    kept = tuple(line for line in definition.grants if not without or without not in line)
    assert without == "" or len(kept) == len(definition.grants) - 1
    return dataclasses.replace(definition, grants=kept + extra)


# -- what the normal form is --------------------------------------------------------------


def test_mysql_normal_form_keeps_everything_but_the_name_and_the_hash() -> None:
    """MySQL: the account becomes <account>, the hash <hash>; plugin, default roles, TLS, limits,
    policies, attribute, partial revoke, dynamic privileges and options stay as printed."""
    assert lines(MYSQL_APP) == (
        "CREATE USER <account> IDENTIFIED WITH 'caching_sha2_password' AS <hash> DEFAULT ROLE `r1`@`%`,`r2`@`%` "
        "REQUIRE SUBJECT '/CN=app' ISSUER '/C=FI/O=Acme' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
        "PASSWORD EXPIRE INTERVAL 90 DAY ACCOUNT UNLOCK PASSWORD HISTORY 5 PASSWORD REUSE INTERVAL 30 DAY "
        'PASSWORD REQUIRE CURRENT FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME 2 ATTRIBUTE \'{"comment": "billing"}\'',
        "GRANT BACKUP_ADMIN, SYSTEM_VARIABLES_ADMIN ON *.* TO <account>",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO <account>",
        "GRANT INSERT, SELECT (`a`, `c`), UPDATE (`b`) ON `appdb`.`t` TO <account> WITH GRANT OPTION",
        "GRANT INSERT, SELECT ON `appdb`.* TO <account>",
        "GRANT PROXY ON `other`@`%` TO <account>",
        "GRANT SELECT ON *.* TO <account>",
        "GRANT XA_RECOVER_ADMIN ON *.* TO <account> WITH GRANT OPTION",
        "GRANT `r1`@`%` TO <account> WITH ADMIN OPTION",
        "GRANT `r2`@`%` TO <account>",
        "REVOKE SELECT ON `mysql`.* FROM <account>",
    )


def test_mariadb_normal_form_masks_the_hash_on_the_usage_line_too() -> None:
    """MariaDB repeats the hash, TLS and limits on its USAGE line: masked there as well;
    SET DEFAULT ROLE is a line of its own."""
    assert lines(MARIADB_APP) == (
        "CREATE USER <account> IDENTIFIED BY PASSWORD <hash> REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' "
        "WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 MAX_STATEMENT_TIME 2.500000 "
        "PASSWORD EXPIRE INTERVAL 90 DAY",
        "GRANT EXECUTE ON PROCEDURE `appdb`.`p` TO <account>",
        "GRANT INSERT, SELECT (`a`, `c`), UPDATE (`b`) ON `appdb`.`t` TO <account> WITH GRANT OPTION",
        "GRANT INSERT, SELECT ON `appdb`.* TO <account>",
        "GRANT PROXY ON `other`@`%` TO <account>",
        "GRANT USAGE ON *.* TO <account> IDENTIFIED BY PASSWORD <hash> REQUIRE ISSUER '/C=FI/O=Acme' "
        "SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 MAX_STATEMENT_TIME 2.500000",
        "GRANT `r1` TO <account> WITH ADMIN OPTION",
        "GRANT `r2` TO <account>",
        "SET DEFAULT ROLE `r1` FOR <account>",
    )


@pytest.mark.parametrize("family", PAIRS)
def test_a_real_copy_compares_equal(family: str) -> None:
    """A user and a twin made alike (other password, other grant order) have no difference."""
    user, twin = PAIRS[family]
    assert user.grants != twin.grants or user.create_user != twin.create_user
    assert differs(user, twin) == ([], [])


@pytest.mark.parametrize("family", PAIRS)
def test_no_hash_survives_normalisation(family: str) -> None:
    """Not a fragment of either account's password hash is left in the normalised lines."""
    hashes = MYSQL_HASHES if family == "mysql" else MARIADB_HASHES
    user, twin = PAIRS[family]
    text = "\n".join([*lines(user), *lines(twin, "app_clone")])
    for fragment in hashes:
        assert fragment not in text


def test_definition_repr_never_shows_the_hash() -> None:
    """An PrintedDefinition in a traceback or log shows neither its lines nor the hash."""
    assert "8AC07B9F" not in repr(MARIADB_APP) and "GRANT" not in repr(MARIADB_APP)


def test_rows_from_the_driver_become_a_definition() -> None:
    """The two statements' rows (bytes or text) make the definition; no row gives an empty CREATE USER."""
    made = PrintedDefinition.from_rows([(b"CREATE USER `app`@`%`",)], [("GRANT USAGE ON *.* TO `app`@`%`",)])
    assert (made.create_user, made.grants) == ("CREATE USER `app`@`%`", ("GRANT USAGE ON *.* TO `app`@`%`",))
    assert PrintedDefinition.from_rows([], []).create_user == ""


# -- hashes that are hard to find the end of ---------------------------------------------------

MYSQL_TAIL = (
    " REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT PASSWORD REUSE INTERVAL "
    "DEFAULT PASSWORD REQUIRE CURRENT DEFAULT"
)
HARD_HASHES = {
    # default sql_mode: MySQL backslash-escapes quote, backslash, CR, ^Z and double quote inside the hash
    "backslash-escaped quote": "'$A$00A$\\\\s^8}!Rx?\x0e\\\"(hRn\\nu,\\'T3X3//pVrZxT4OkayxG.tKPCvaeK.DUW5LZAYyvBm/qD'",
    "escaped backslash": "'$A$00A$Ol\x0fRU\x02s\x0c\x14\x1d1|f\\\\e>?}i9vKDDNvAhtZWqiAp3.mFYi/Zqz9m3VJkU6W2ywi4g7.7'",
    "escaped ctrl-Z": "'$A$00A$D\x127ZONA=l\x12X(e\x0el\x12\x018K\\Zthhu/O7hekECATEU/YUsRWv6DQjaTOEkmZdRc8icqf9'",
    # NO_BACKSLASH_ESCAPES: the quote doubled, backslashes and even a newline raw
    "doubled quote, raw newline": "'$A$00A$\\s^8}!Rx?\x0e\"(hRn\nu,''T3X3//pVrZxT4OkayxG.tKPCvaeK.DUW5LZAYyvBm/qD'",
    "raw backslash before a doubled quote": "'$A$00A$~=\x12?O\x18v\x05^x~0lMGg3\\''X3k2ZNPrdhspMg4nUh7K1o3h5Rd2P"
    "LrDpSyi7TJqrS8A'",
    # print_identified_with_as_hex=ON
    "hexadecimal": "0x244124303035240C76625D1038652618",
}


@pytest.mark.parametrize("literal", HARD_HASHES.values(), ids=HARD_HASHES.keys())
def test_a_hash_is_masked_however_the_server_escaped_it(literal: str) -> None:
    """MySQL's hashes hold quotes, backslashes and control characters, escaped by sql_mode: each is
    masked whole and the rest of the line is read on."""
    definition = PrintedDefinition(
        create_user=f"CREATE USER `h4`@`%` IDENTIFIED WITH 'caching_sha2_password' AS {literal}{MYSQL_TAIL}",
        grants=("GRANT USAGE ON *.* TO `h4`@`%`",),
    )
    assert lines(definition, "h4")[0] == (
        f"CREATE USER <account> IDENTIFIED WITH 'caching_sha2_password' AS <hash>{MYSQL_TAIL}"
    )


def test_an_ambiguous_hash_is_refused_without_quoting_it() -> None:
    """A hash whose end both escaping rules find, at different places, is refused (fail closed); the
    error quotes no part of the line."""
    literal = "'ab\\' REQUIRE X ' REQUIRE NONE"
    definition = PrintedDefinition(
        create_user=f"CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS {literal}", grants=()
    )
    with pytest.raises(UnsupportedDatabaseError, match="cannot tell where the authentication string ends") as raised:
        lines(definition)
    assert "ab\\" not in str(raised.value) and "SHOW CREATE USER of 'app'@'%'" in str(raised.value)


def test_mariadb_authentication_chains_and_plugins() -> None:
    """MariaDB's VIA ... USING ... OR ...: every string masked, every plugin kept."""
    definition = PrintedDefinition(
        create_user="CREATE USER `x509`@`localhost` IDENTIFIED VIA mysql_native_password USING "
        "'*D821809F681A40A6E379B50D0463EFAE20BDD122' OR unix_socket REQUIRE X509 PASSWORD EXPIRE",
        grants=(
            "GRANT USAGE ON *.* TO `x509`@`localhost` IDENTIFIED VIA mysql_native_password USING "
            "'*D821809F681A40A6E379B50D0463EFAE20BDD122' OR unix_socket REQUIRE X509",
        ),
    )
    assert lines(definition, "x509", "localhost") == (
        "CREATE USER <account> IDENTIFIED VIA mysql_native_password USING <hash> OR unix_socket REQUIRE X509 "
        "PASSWORD EXPIRE",
        "GRANT USAGE ON *.* TO <account> IDENTIFIED VIA mysql_native_password USING <hash> OR unix_socket REQUIRE X509",
    )


def test_a_second_authentication_factor_is_read_and_masked() -> None:
    """MySQL 8.0.27+ multifactor (``AND IDENTIFIED WITH``, from the manual: not available here)."""
    definition = PrintedDefinition(
        create_user="CREATE USER `app`@`%` IDENTIFIED WITH 'caching_sha2_password' AS '$A$005$abc' "
        "AND IDENTIFIED WITH 'authentication_ldap_simple' AS 'uid=app' REQUIRE NONE",
        grants=(),
    )
    assert lines(definition)[0] == (
        "CREATE USER <account> IDENTIFIED WITH 'caching_sha2_password' AS <hash> "
        "AND IDENTIFIED WITH 'authentication_ldap_simple' AS <hash> REQUIRE NONE"
    )


# -- names: only the account the line is about is replaced -------------------------------------

ODD_NAME = "o'b`r%_\\n"  # a quote, a backtick, LIKE wildcards and a backslash
ODD_MYSQL = PrintedDefinition(
    create_user="CREATE USER `o'b``r%_\\n`@`10.0.%` IDENTIFIED WITH 'caching_sha2_password' AS "
    "'$A$00A$Ak=P\t\x0e*\\rP&\x1bbO kM\x1f\x15I\x1eoinjzUIZNAM5HXesQOQWDyynzsvu2mZCJpvs79Jy6e/' "
    "DEFAULT ROLE `r1`@`%` REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK PASSWORD HISTORY DEFAULT "
    "PASSWORD REUSE INTERVAL DEFAULT PASSWORD REQUIRE CURRENT DEFAULT",
    grants=(
        "GRANT USAGE ON *.* TO `o'b``r%_\\n`@`10.0.%`",
        "GRANT SELECT ON `o'b``r%_`.* TO `o'b``r%_\\n`@`10.0.%`",
        "GRANT `r1`@`%` TO `o'b``r%_\\n`@`10.0.%`",
    ),
)
ODD_MARIADB = PrintedDefinition(
    create_user="CREATE USER `o'b``r%_\\n`@`10.0.%` IDENTIFIED BY PASSWORD '*B69027D44F6E5EDC07F1AEAD1477967B16F28227'",
    grants=(
        "GRANT USAGE ON *.* TO `o'b``r%_\\n`@`10.0.%` IDENTIFIED BY PASSWORD "
        "'*B69027D44F6E5EDC07F1AEAD1477967B16F28227'",
        "GRANT SELECT ON `o'b``r%_`.* TO `o'b``r%_\\n`@`10.0.%`",
        "SET DEFAULT ROLE `r2` FOR `o'b``r%_\\n`@`10.0.%`",
    ),
)


@pytest.mark.parametrize("definition", [ODD_MYSQL, ODD_MARIADB], ids=["mysql", "mariadb"])
def test_a_name_with_quotes_backticks_wildcards_and_backslash(definition: PrintedDefinition) -> None:
    """The account is recognised through its quoting; a schema named like it stays as printed."""
    normal = lines(definition, ODD_NAME, "10.0.%")
    assert "GRANT SELECT ON `o'b``r%_`.* TO <account>" in normal
    assert all("10.0.%" not in line for line in normal)
    assert not any("B69027D44F" in line or "oinjzUIZ" in line for line in normal)


def test_the_name_elsewhere_in_a_line_is_not_replaced() -> None:
    """A schema called like the user is not the user: the twin with the same grant on a schema
    called like *itself* differs."""
    user = with_grants(MARIADB_APP, "GRANT SELECT ON `app`.* TO `app`@`%`")
    same = with_grants(MARIADB_TWIN, "GRANT SELECT ON `app`.* TO `app_clone`@`%`")
    renamed = with_grants(MARIADB_TWIN, "GRANT SELECT ON `app_clone`.* TO `app_clone`@`%`")
    assert differs(user, same) == ([], [])
    assert differs(user, renamed) == (
        ["GRANT SELECT ON `app`.* TO <account>"],
        ["GRANT SELECT ON `app_clone`.* TO <account>"],
    )


def test_a_line_about_another_account_is_refused() -> None:
    """A line whose grantee is not the account asked for cannot be compared: refused."""
    other = dataclasses.replace(MARIADB_APP, grants=(MARIADB_APP.grants[0], "GRANT `r2` TO `app_clone`@`%`"))
    with pytest.raises(UnsupportedDatabaseError, match=r"line 2 of SHOW GRANTS for 'app'@'%'.*another account"):
        lines(other)


@pytest.mark.parametrize("family", PAIRS)
def test_the_host_is_part_of_the_account(family: str) -> None:
    """The same user at another host is another account: its lines are not this one's."""
    with pytest.raises(UnsupportedDatabaseError, match="another account"):
        lines(PAIRS[family][0], "app", "10.%")


ANSI_QUOTES = {
    # sql_mode=ANSI_QUOTES: names in double quotes (MySQL still prints some in backticks)
    "mysql": PrintedDefinition(
        create_user=MYSQL_APP.create_user.replace("`app`@`%`", '"app"@"%"'),
        grants=(
            'GRANT SELECT ON *.* TO "app"@"%"',
            'GRANT BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON *.* TO "app"@"%"',
            'GRANT XA_RECOVER_ADMIN ON *.* TO "app"@"%" WITH GRANT OPTION',
            'GRANT SELECT, INSERT ON "appdb".* TO "app"@"%"',
            'REVOKE SELECT ON "mysql".* FROM "app"@"%"',
            'GRANT SELECT ("a", "c"), INSERT, UPDATE ("b") ON "appdb"."t" TO "app"@"%" WITH GRANT OPTION',
            'GRANT EXECUTE ON PROCEDURE "appdb"."p" TO "app"@"%"',
            'GRANT PROXY ON "other"@"%" TO "app"@"%"',
            'GRANT "r2"@"%" TO "app"@"%"',
            'GRANT `r1`@`%` TO "app"@"%" WITH ADMIN OPTION',
        ),
    ),
    "mariadb": PrintedDefinition(
        create_user=MARIADB_APP.create_user.replace("`app`@`%`", '"app"@"%"'),
        grants=(
            'GRANT "r1" TO "app"@"%" WITH ADMIN OPTION',
            'GRANT "r2" TO "app"@"%"',
            'GRANT USAGE ON *.* TO "app"@"%" IDENTIFIED BY PASSWORD \'*8AC07B9FC3C14045B998258AE0EA26253B310CE7\' '
            "REQUIRE ISSUER '/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
            "MAX_STATEMENT_TIME 2.500000",
            'GRANT SELECT, INSERT ON "appdb".* TO "app"@"%"',
            'GRANT SELECT ("a", "c"), INSERT, UPDATE ("b") ON "appdb"."t" TO "app"@"%" WITH GRANT OPTION',
            'GRANT EXECUTE ON PROCEDURE "appdb"."p" TO "app"@"%"',
            'GRANT PROXY ON "other"@"%" TO "app"@"%"',
            'SET DEFAULT ROLE "r1" FOR "app"@"%"',
        ),
    ),
}


@pytest.mark.parametrize("family", ANSI_QUOTES)
def test_ansi_quotes_output_is_read(family: str) -> None:
    """With ANSI_QUOTES in sql_mode the account is still found and the hash masked; the
    other names keep the server's quoting (both accounts are printed alike)."""
    normal = lines(ANSI_QUOTES[family])
    assert len(normal) == len(PAIRS[family][0].grants) + 1
    assert all("<account>" in line for line in normal)
    assert not any(fragment in line for line in normal for fragment in (*MYSQL_HASHES, *MARIADB_HASHES))


def test_mysql_5_7_single_quoted_accounts_are_read() -> None:
    """Older servers quote the account with single quotes: still recognised."""
    definition = PrintedDefinition(
        create_user="CREATE USER 'app'@'%' IDENTIFIED WITH 'mysql_native_password' AS "
        "'*8AC07B9FC3C14045B998258AE0EA26253B310CE7' REQUIRE NONE PASSWORD EXPIRE DEFAULT ACCOUNT UNLOCK",
        grants=("GRANT USAGE ON *.* TO 'app'@'%'",),
    )
    assert lines(definition) == (
        "CREATE USER <account> IDENTIFIED WITH 'mysql_native_password' AS <hash> REQUIRE NONE PASSWORD EXPIRE "
        "DEFAULT ACCOUNT UNLOCK",
        "GRANT USAGE ON *.* TO <account>",
    )


# -- orders that carry no meaning --------------------------------------------------------------


def test_privilege_column_and_role_order_do_not_matter() -> None:
    """The same privileges, columns, roles and default roles listed in another order are equal."""
    twin = changed(MYSQL_TWIN, "BACKUP_ADMIN,SYSTEM_VARIABLES_ADMIN ON", "SYSTEM_VARIABLES_ADMIN,BACKUP_ADMIN ON")
    twin = changed(twin, "SELECT (`a`, `c`), INSERT, UPDATE (`b`)", "UPDATE (`b`), INSERT, SELECT (`c`, `a`)")
    twin = changed(twin, "DEFAULT ROLE `r1`@`%`,`r2`@`%`", "DEFAULT ROLE `r2`@`%`,`r1`@`%`")
    twin = with_grants(twin, "GRANT `r2`@`%`,`r1`@`%` TO `app_clone`@`%`", without="GRANT `r2`@`%` TO")
    user = with_grants(MYSQL_APP, "GRANT `r1`@`%`,`r2`@`%` TO `app`@`%`", without="GRANT `r2`@`%` TO")
    assert differs(user, twin) == ([], [])


def test_a_repeated_line_counts() -> None:
    """Lines are compared as a multiset: one more copy of a line is a difference."""
    twin = with_grants(MARIADB_TWIN, "GRANT `r2` TO `app_clone`@`%`")
    assert differs(MARIADB_APP, twin) == ([], ["GRANT `r2` TO <account>"])


# -- what the sync cannot see today, and everything else: each a difference ---------------------

MYSQL_DIFFERENCES = {
    # issue 10: what the sync made of a dynamic privilege held WITH GRANT OPTION
    "dynamic privilege grant option": (
        "GRANT XA_RECOVER_ADMIN ON *.* TO `app_clone`@`%` WITH GRANT OPTION",
        "GRANT XA_RECOVER_ADMIN ON *.* TO `app_clone`@`%`",
    ),
    "plugin": ("'caching_sha2_password' AS '$A$00A$\\rYR", "'sha256_password' AS '$A$00A$\\rYR"),
    "column grant": ("SELECT (`a`, `c`), INSERT", "SELECT (`a`), INSERT"),
    "routine grant": ("EXECUTE ON PROCEDURE `appdb`.`p`", "EXECUTE, ALTER ROUTINE ON PROCEDURE `appdb`.`p`"),
    "proxy grant": (
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%` WITH GRANT OPTION",
    ),
    "role admin option": ("GRANT `r1`@`%` TO `app_clone`@`%` WITH ADMIN OPTION", "GRANT `r1`@`%` TO `app_clone`@`%`"),
    "default role": ("DEFAULT ROLE `r1`@`%`,`r2`@`%`", "DEFAULT ROLE `r1`@`%`"),
    "tls requirement": ("REQUIRE SUBJECT '/CN=app' ISSUER '/C=FI/O=Acme'", "REQUIRE X509"),
    "resource limit": ("MAX_USER_CONNECTIONS 20", "MAX_USER_CONNECTIONS 10"),
    "password expiry": ("PASSWORD EXPIRE INTERVAL 90 DAY", "PASSWORD EXPIRE DEFAULT"),
    "password history": ("PASSWORD HISTORY 5", "PASSWORD HISTORY DEFAULT"),
    "password reuse": ("PASSWORD REUSE INTERVAL 30 DAY", "PASSWORD REUSE INTERVAL DEFAULT"),
    "password require current": ("PASSWORD REQUIRE CURRENT FAILED", "PASSWORD REQUIRE CURRENT DEFAULT FAILED"),
    "failed login attempts": (
        "FAILED_LOGIN_ATTEMPTS 4 PASSWORD_LOCK_TIME 2",
        "FAILED_LOGIN_ATTEMPTS 0 PASSWORD_LOCK_TIME 0",
    ),
    "account lock": ("ACCOUNT UNLOCK", "ACCOUNT LOCK"),
    "comment": ('ATTRIBUTE \'{"comment": "billing"}\'', 'ATTRIBUTE \'{"comment": "billing (old)"}\''),
    "schema privilege": ("GRANT SELECT, INSERT ON `appdb`.*", "GRANT SELECT, INSERT, DELETE ON `appdb`.*"),
}


@pytest.mark.parametrize(("old", "new"), MYSQL_DIFFERENCES.values(), ids=MYSQL_DIFFERENCES.keys())
def test_each_mysql_difference_is_found(old: str, new: str) -> None:
    """A twin that differs in any one thing the server prints differs, and the differing lines are named."""
    only_user, only_twin = differs(MYSQL_APP, changed(MYSQL_TWIN, old, new))
    assert len(only_user) == len(only_twin) == 1
    assert only_twin[0] in lines(changed(MYSQL_TWIN, old, new), "app_clone")


def test_a_missing_partial_revoke_is_found() -> None:
    """issue 10: a twin without the user's partial revoke (it can read the mysql schema) differs."""
    twin = with_grants(MYSQL_TWIN, without="REVOKE SELECT ON `mysql`.*")
    assert differs(MYSQL_APP, twin) == (["REVOKE SELECT ON `mysql`.* FROM <account>"], [])


MARIADB_DIFFERENCES = {
    "plugin": (
        "IDENTIFIED BY PASSWORD '*A5DC37D863527A3AD50B55494F4D941813397080' REQUIRE ISSUER '/C=FI/O=Acme' "
        "SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 MAX_STATEMENT_TIME 2.500000 "
        "PASSWORD",
        "IDENTIFIED VIA ed25519 USING 'ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY' REQUIRE ISSUER "
        "'/C=FI/O=Acme' SUBJECT '/CN=app' WITH MAX_QUERIES_PER_HOUR 5000 MAX_USER_CONNECTIONS 20 "
        "MAX_STATEMENT_TIME 2.500000 PASSWORD",
    ),
    "column grant": ("SELECT (`a`, `c`), INSERT", "SELECT (`c`), INSERT"),
    "grant option": (
        "UPDATE (`b`) ON `appdb`.`t` TO `app_clone`@`%` WITH GRANT OPTION",
        "UPDATE (`b`) ON `appdb`.`t` TO `app_clone`@`%`",
    ),
    "role admin option": ("GRANT `r1` TO `app_clone`@`%` WITH ADMIN OPTION", "GRANT `r1` TO `app_clone`@`%`"),
    "default role": ("SET DEFAULT ROLE `r1` FOR", "SET DEFAULT ROLE `r2` FOR"),
    "proxy grant": (
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%`",
        "GRANT PROXY ON `other`@`%` TO `app_clone`@`%` WITH GRANT OPTION",
    ),
    "password expiry": ("PASSWORD EXPIRE INTERVAL 90 DAY", "PASSWORD EXPIRE INTERVAL 30 DAY"),
    "account lock": (
        "MAX_STATEMENT_TIME 2.500000 PASSWORD EXPIRE",
        "MAX_STATEMENT_TIME 2.500000 ACCOUNT LOCK PASSWORD EXPIRE",
    ),
}


@pytest.mark.parametrize(("old", "new"), MARIADB_DIFFERENCES.values(), ids=MARIADB_DIFFERENCES.keys())
def test_each_mariadb_difference_is_found(old: str, new: str) -> None:
    """The same on MariaDB, for what MariaDB has."""
    only_user, only_twin = differs(MARIADB_APP, changed(MARIADB_TWIN, old, new))
    assert only_user and only_twin


def test_mariadb_tls_and_limits_differ_on_both_lines_that_print_them() -> None:
    """MariaDB prints TLS and limits twice (CREATE USER and the USAGE line): a difference shows on both."""
    twin = PrintedDefinition(
        create_user=MARIADB_TWIN.create_user.replace("MAX_USER_CONNECTIONS 20", "MAX_USER_CONNECTIONS 10"),
        grants=tuple(
            line.replace("MAX_USER_CONNECTIONS 20", "MAX_USER_CONNECTIONS 10") for line in MARIADB_TWIN.grants
        ),
    )
    _, only_twin = differs(MARIADB_APP, twin)
    assert [line.split(" IDENTIFIED")[0] for line in only_twin] == [
        "CREATE USER <account>",
        "GRANT USAGE ON *.* TO <account>",
    ]


# -- lines that cannot be read: refused, never passed -------------------------------------------

UNREADABLE = {
    "not a grant": ("GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%`", "FLUSH PRIVILEGES", "not GRANT, REVOKE or SET"),
    "unclosed name": (
        "GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%`",
        "GRANT SELECT, INSERT ON `appdb.* TO `app`@`%`",
        "does not close",
    ),
    "no grantee": (
        "GRANT SELECT, INSERT ON `appdb`.* TO `app`@`%`",
        "GRANT SELECT, INSERT ON `appdb`.*",
        "expected TO",
    ),
    "unclosed columns": ("GRANT SELECT (`a`, `c`), INSERT", "GRANT SELECT (`a`, `c`, INSERT", "expected ON or TO"),
}


@pytest.mark.parametrize(("old", "new", "reason"), UNREADABLE.values(), ids=UNREADABLE.keys())
def test_an_unreadable_line_is_refused_naming_the_account_not_the_line(old: str, new: str, reason: str) -> None:
    """Output this module cannot take apart fails closed with a typed error that names the account."""
    with pytest.raises(UnsupportedDatabaseError, match=reason) as raised:
        lines(changed(MARIADB_APP, old, new))
    assert "SHOW GRANTS for 'app'@'%'" in str(raised.value) and new not in str(raised.value)


def test_a_create_user_without_the_expected_shape_is_refused() -> None:
    """A SHOW CREATE USER that is not one (or is missing) is refused."""
    for text in ("", "ALTER USER `app`@`%`", "CREATE USER `app`@`%` IDENTIFIED FROM 'x'"):
        with pytest.raises(UnsupportedDatabaseError, match="cannot read SHOW CREATE USER of 'app'@'%'"):
            lines(dataclasses.replace(MARIADB_APP, create_user=text))


# -- the comparison over hosts ------------------------------------------------------------------


class FakeCatalogue:
    """Definitions by account, as an admin session would read them."""

    def __init__(self, accounts: dict[tuple[str, str], PrintedDefinition]) -> None:
        self.accounts = accounts
        self.read: list[tuple[str, str]] = []

    def account_hosts(self, user: str) -> list[str]:
        return [host for name, host in self.accounts if name == user]

    def account_definition(self, user: str, host: str) -> comparison.AccountDefinition:
        self.read.append((user, host))
        # As the MySQL backend answers: the printed definition, taken apart.
        return definition(self.accounts[user, host], user, host, SECRET)


def at(definition: PrintedDefinition, user: str, host: str) -> PrintedDefinition:
    """``definition`` printed for ``user``@``host`` instead."""
    old = definition.create_user.split(" ")[2]
    new = f"`{user}`@`{host}`"
    return PrintedDefinition(
        create_user=definition.create_user.replace(old, new),
        grants=tuple(line.replace(old, new) for line in definition.grants),
    )


def test_verify_copy_compares_every_host() -> None:
    """Each host of the user is compared with the twin's account at that host."""
    catalogue = FakeCatalogue(
        {
            ("app", "%"): MARIADB_APP,
            ("app", "10.%"): at(MARIADB_APP, "app", "10.%"),
            ("app_clone", "10.%"): at(MARIADB_TWIN, "app_clone", "10.%"),
            ("app_clone", "%"): MARIADB_TWIN,
        }
    )
    verify_copy(catalogue, SECRET, "app", "app_clone")
    assert sorted(catalogue.read) == [("app", "%"), ("app", "10.%"), ("app_clone", "%"), ("app_clone", "10.%")]


def test_verify_copy_names_the_host_and_the_lines_never_the_hash() -> None:
    """The error names the host and each side's differing lines, masked."""
    twin = with_grants(MYSQL_TWIN, without="REVOKE SELECT ON `mysql`.*")
    catalogue = FakeCatalogue({("app", "%"): MYSQL_APP, ("app_clone", "%"): twin})
    with pytest.raises(PrivilegeMismatchError) as raised:
        verify_copy(catalogue, SECRET, "app", "app_clone")
    message = str(raised.value)
    assert message.startswith(f"{SECRET}: 'app_clone' does not match 'app'")
    assert "at host '%': only 'app': REVOKE SELECT ON `mysql`.* FROM <account>; nothing only 'app_clone' has" in message
    assert not any(fragment in message for fragment in MYSQL_HASHES)


def test_verify_copy_refuses_other_hosts() -> None:
    """A twin missing a host, or at an extra one, fails before any definition is read."""
    for twin_hosts in ([], ["%", "10.%"]):
        accounts = {("app", "%"): MARIADB_APP} | {("app_clone", host): MARIADB_TWIN for host in twin_hosts}
        catalogue = FakeCatalogue(accounts)
        with pytest.raises(PrivilegeMismatchError, match="hosts differ"):
            verify_copy(catalogue, SECRET, "app", "app_clone")
        assert catalogue.read == []


def test_verify_copy_refuses_a_user_without_accounts() -> None:
    """Nothing to compare with is not a match."""
    with pytest.raises(PrivilegeMismatchError, match="'app' has no account"):
        verify_copy(FakeCatalogue({}), SECRET, "app", "app_clone")


def test_check_readable_reads_each_host_of_the_user_only() -> None:
    """setSecret's pre-flight reads and takes apart the user's definitions, nothing of the twin."""
    catalogue = FakeCatalogue({("app", "%"): MYSQL_APP, ("app", "10.%"): at(MYSQL_APP, "app", "10.%")})
    check_readable(catalogue, SECRET, "app", ["%", "10.%"])
    assert catalogue.read == [("app", "%"), ("app", "10.%")]
    catalogue.accounts["app", "%"] = dataclasses.replace(MYSQL_APP, create_user="")
    with pytest.raises(UnsupportedDatabaseError):
        check_readable(catalogue, SECRET, "app", ["%"])


def test_a_long_line_is_quoted_around_its_difference() -> None:
    """Two long CREATE USER lines that differ at their end: the error shows the words around the difference."""
    twin = changed(MYSQL_TWIN, '"comment": "billing"', '"comment": "billing (old)"')
    catalogue = FakeCatalogue({("app", "%"): MYSQL_APP, ("app_clone", "%"): twin})
    with pytest.raises(PrivilegeMismatchError) as raised:
        verify_copy(catalogue, SECRET, "app", "app_clone")
    assert (
        "only 'app': CREATE USER <account> ... ATTRIBUTE '{\"comment\": \"billing\"}'; "
        "only 'app_clone': CREATE USER <account> ... ATTRIBUTE '{\"comment\": \"billing (old)\"}'"
    ) in str(raised.value)
