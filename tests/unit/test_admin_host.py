"""Where an admin secret's credentials may go (rotator.admin_host), and how the admin logs in.

The rules are pure; RDS's tags come from DescribeSecret, here moto's (which stores tags
given to create_secret, ``aws:`` ones included, as RDS's own secrets carry them). The
database side, with real servers, is tests/integration/test_admin_host.py.
"""

from __future__ import annotations

import json
import ssl
from collections.abc import Mapping
from typing import Any

import pytest

from rotator.admin_host import CLUSTER_TAG, INSTANCE_TAG, confirm_admin_host
from rotator.backends.mysql.base import MySQLDatabase
from rotator.errors import AdminHostError
from rotator.secret import DatabaseSecret
from rotator.settings import BUNDLED_CA, ConfiguredHost, Settings, SettingsError
from tests.support.aws import begin_rotation, create_secret, event
from tests.support.cli import Cli
from tests.unit.conftest import Lambda

REGION = "eu-west-1"
ADMIN_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:rds!cluster-0a1b2c3d-AbCdEf"
APP_ARN = f"arn:aws:secretsmanager:{REGION}:123456789012:secret:app-db-AbCdEf"
CLUSTER = f"arn:aws:rds:{REGION}:123456789012:cluster:prod-db"
INSTANCE = f"arn:aws:rds:{REGION}:123456789012:db:prod-db-1"
WRITER = f"prod-db.cluster-c9akciq32xyz.{REGION}.rds.amazonaws.com"
READER = f"prod-db.cluster-ro-c9akciq32xyz.{REGION}.rds.amazonaws.com"
ADMIN_PASSWORD = "pw-admin-Unit-5cY2-never-shown"
APP_PASSWORD = "pw-app-Unit-8hQ1-never-shown"


def app(host: str, **extra: Any) -> DatabaseSecret:
    value = {"host": host, "port": 3306, "username": "app", "password": APP_PASSWORD, "masterarn": ADMIN_ARN}
    return DatabaseSecret.parse(APP_ARN, json.dumps({**value, **extra}))


def admin(**extra: Any) -> DatabaseSecret:
    value = {"username": "admin", "password": ADMIN_PASSWORD, **extra}
    return DatabaseSecret.parse(ADMIN_ARN, json.dumps(value), require_host=False)


def tags(**found: str) -> Any:
    def read() -> Mapping[str, str]:
        return found

    return read


def no_tags_expected() -> Mapping[str, str]:
    raise AssertionError("DescribeSecret is not needed here")


CLUSTER_TAGS = {CLUSTER_TAG: CLUSTER, "aws:secretsmanager:owningService": "rds"}


# -- the rules ---------------------------------------------------------------------------


def test_an_admin_secret_with_a_host_keeps_it() -> None:
    """The admin's own host, whatever the application secret says; no DescribeSecret."""
    confirmed = confirm_admin_host(app("attacker.example"), admin(host=WRITER, port=3307), {}, no_tags_expected)
    assert (confirmed.secret.host, confirmed.secret.port) == (WRITER, 3307)
    assert confirmed.confirmed_by == "the admin secret's own host"


def test_the_operator_setting_confirms_a_host_for_a_hostless_admin_secret() -> None:
    """ADMIN_SECRET_HOSTS wins over anything else: its host (and port, else the app's)."""
    configured = {ADMIN_ARN: ConfiguredHost("10.0.0.5", None)}
    confirmed = confirm_admin_host(app("anything.internal", port=3310), admin(), configured, no_tags_expected)
    assert (confirmed.secret.host, confirmed.secret.port, confirmed.confirmed_by) == (
        "10.0.0.5",
        3310,
        "ADMIN_SECRET_HOSTS",
    )
    configured = {ADMIN_ARN: ConfiguredHost("10.0.0.5", 3399)}
    assert confirm_admin_host(app("x.internal"), admin(), configured, no_tags_expected).secret.port == 3399


def test_a_setting_that_disagrees_with_the_admin_secrets_own_host_is_refused() -> None:
    """Someone is wrong about where the admin's password goes: refused, naming both."""
    configured = {ADMIN_ARN: ConfiguredHost("other.internal", None)}
    with pytest.raises(AdminHostError, match=r"names host db\.internal:3306, but ADMIN_SECRET_HOSTS confirms"):
        confirm_admin_host(app("db.internal"), admin(host="db.internal"), configured, no_tags_expected)
    same = {ADMIN_ARN: ConfiguredHost("DB.internal", 3306)}
    assert confirm_admin_host(app("x"), admin(host="db.internal"), same, no_tags_expected).secret.host == "db.internal"


@pytest.mark.parametrize("host", [WRITER, READER, WRITER.upper(), WRITER + "."])
def test_rds_cluster_tag_confirms_its_endpoints_and_the_admin_goes_to_the_writer(host: str) -> None:
    """The cluster RDS named in the secret's tag: the app's writer or reader endpoint is
    accepted, and the admin logs in on the cluster's writer endpoint."""
    confirmed = confirm_admin_host(app(host), admin(), {}, tags(**CLUSTER_TAGS))
    assert (confirmed.secret.host, confirmed.secret.port) == (WRITER, 3306)
    assert confirmed.confirmed_by == f"tag {CLUSTER_TAG} (cluster 'prod-db')"


@pytest.mark.parametrize(
    "host",
    [
        f"other-db.cluster-c9akciq32xyz.{REGION}.rds.amazonaws.com",  # another cluster
        "prod-db.cluster-c9akciq32xyz.us-east-1.rds.amazonaws.com",  # another region
        f"prod-db.cluster-c9akciq32xyz.{REGION}.rds.amazonaws.com.evil.example",  # a look-alike
        f"prod-db.cluster-c9akciq32xyz.evil.{REGION}.rds.amazonaws.com",
        f"prod-db.cluster-custom-c9akciq32xyz.{REGION}.rds.amazonaws.com",  # names a custom endpoint
        f"prod-db-1.c9akciq32xyz.{REGION}.rds.amazonaws.com",  # an instance, not the cluster
        "prod-db.internal",  # a CNAME of one's own
        "127.0.0.1",
    ],
)
def test_an_application_host_that_is_not_an_endpoint_of_the_tagged_cluster_is_refused(host: str) -> None:
    """Anything but the tagged cluster's own endpoint, by name: refused, naming the secret,
    the cluster, the host and the two ways to fix it."""
    with pytest.raises(AdminHostError) as refused:
        confirm_admin_host(app(host), admin(), {}, tags(**CLUSTER_TAGS))
    message = str(refused.value)
    assert message.startswith(f"{APP_ARN}: admin secret {ADMIN_ARN} has no host and belongs to cluster 'prod-db'")
    assert f"{host} is not an endpoint of it (prod-db.cluster-[ro-]<id>.{REGION}.rds.amazonaws.com)" in message
    assert "ADMIN_SECRET_HOSTS" in message and ADMIN_PASSWORD not in message and APP_PASSWORD not in message


def test_rds_instance_tag_confirms_the_instance_endpoint_only() -> None:
    """An instance's secret: its own endpoint is the admin's host; a cluster endpoint is not."""
    host = f"prod-db-1.c9akciq32xyz.{REGION}.rds.amazonaws.com"
    confirmed = confirm_admin_host(app(host), admin(), {}, tags(**{INSTANCE_TAG: INSTANCE}))
    assert confirmed.secret.host == host and "DB instance 'prod-db-1'" in confirmed.confirmed_by
    with pytest.raises(AdminHostError, match="DB instance 'prod-db-1'"):
        confirm_admin_host(
            app(f"prod-db-1.cluster-c9akciq32xyz.{REGION}.rds.amazonaws.com"),
            admin(),
            {},
            tags(**{INSTANCE_TAG: INSTANCE}),
        )


def test_china_regions_use_their_own_dns_suffix() -> None:
    cluster = "arn:aws-cn:rds:cn-north-1:123456789012:cluster:prod-db"
    host = "prod-db.cluster-c9akciq32xyz.cn-north-1.rds.amazonaws.com.cn"
    assert confirm_admin_host(app(host), admin(), {}, tags(**{CLUSTER_TAG: cluster})).secret.host == host


def test_no_tag_and_no_setting_is_refused_with_what_to_do() -> None:
    """A hostless admin secret nothing confirms (not RDS's, or its tag was not readable as one)."""
    with pytest.raises(AdminHostError) as refused:
        confirm_admin_host(app(WRITER), admin(), {}, tags(team="db"))
    assert str(refused.value) == (
        f"{APP_ARN}: admin secret {ADMIN_ARN} has no host, and nothing confirms the application's host {WRITER} "
        f"for it: no ADMIN_SECRET_HOSTS entry names it, and it carries no {CLUSTER_TAG} or {INSTANCE_TAG} tag "
        f"(RDS puts one on the secrets it manages); add '{ADMIN_ARN}=<host>' to ADMIN_SECRET_HOSTS "
        "(the stack's AdminSecretHosts)"
    )
    with pytest.raises(AdminHostError, match="is not an RDS ARN of that kind"):
        confirm_admin_host(app(WRITER), admin(), {}, tags(**{CLUSTER_TAG: INSTANCE}))


# -- ADMIN_SECRET_HOSTS --------------------------------------------------------------------


def test_admin_secret_hosts_are_read_from_the_environment() -> None:
    """ARN=host[:port] entries, comma-separated; a secret name holding '=' splits at the last one."""
    raw = f" {ADMIN_ARN}=10.0.0.5 , arn:aws:secretsmanager:{REGION}:1:secret:a=b-AbCdEf=db.internal:3307,"
    hosts = Settings.from_env({"ADMIN_SECRET_HOSTS": raw}).admin_hosts
    assert hosts == {
        ADMIN_ARN: ConfiguredHost("10.0.0.5", None),
        f"arn:aws:secretsmanager:{REGION}:1:secret:a=b-AbCdEf": ConfiguredHost("db.internal", 3307),
    }
    assert Settings.from_env({}).admin_hosts == {}


@pytest.mark.parametrize(
    ("raw", "problem"),
    [
        ("db.internal", "is not <admin secret ARN>=<host>"),
        (f"{ADMIN_ARN}=", "is not <admin secret ARN>=<host>"),
        (f"{ADMIN_ARN}=db.internal:99999", "the port must be a number"),
        (f"{ADMIN_ARN}=db internal", "is not a host name"),
        (f"{ADMIN_ARN}=a.internal,{ADMIN_ARN}=b.internal", "two different hosts"),
    ],
)
def test_a_bad_admin_secret_hosts_entry_names_the_variable(raw: str, problem: str) -> None:
    with pytest.raises(SettingsError, match=f"^ADMIN_SECRET_HOSTS: .*{problem}"):
        Settings.from_env({"ADMIN_SECRET_HOSTS": raw})


# -- with Secrets Manager (moto): the tags, the steps, check ---------------------------------


def rds_admin_secret(aws: Any, tag_value: str = CLUSTER) -> str:
    """An admin secret as RDS makes it: username and password, and RDS's tags."""
    response = aws.create_secret(
        Name="rds!cluster-0a1b2c3d",
        SecretString=json.dumps({"username": "admin", "password": ADMIN_PASSWORD}),
        Tags=[{"Key": CLUSTER_TAG, "Value": tag_value}, {"Key": "aws:secretsmanager:owningService", "Value": "rds"}],
    )
    return str(response["ARN"])


def test_the_store_reads_an_admin_secrets_tags_once(aws: Any, handler: Lambda) -> None:
    """DescribeSecret returns the tags RDS puts on its secrets (moto keeps aws: tags), once per
    container; a secret without tags has none."""
    arn = rds_admin_secret(aws)
    store = handler.container.store
    calls: list[str] = []
    store.api.client.meta.events.register("before-call.secrets-manager.DescribeSecret", lambda **_: calls.append("x"))
    assert store.admin_tags(arn)[CLUSTER_TAG] == CLUSTER
    assert store.admin_tags(arn)[CLUSTER_TAG] == CLUSTER
    assert calls == ["x"]
    assert store.admin_tags(create_secret(aws, "plain", {"username": "a", "password": "b"})) == {}


@pytest.mark.parametrize(("host", "refused"), [(WRITER, False), (f"elsewhere.{REGION}.rds.amazonaws.com", True)])
def test_create_secret_refuses_an_unconfirmed_admin_host_before_writing(
    aws: Any, handler: Lambda, monkeypatch: pytest.MonkeyPatch, host: str, refused: bool
) -> None:
    """Through the handler on moto: with an RDS-managed admin secret, createSecret (which logs
    in nowhere) writes the pending version only when the application's host is an endpoint
    of the tagged cluster; otherwise AdminHostError and nothing written or printed."""
    monkeypatch.setenv("POWERTOOLS_IDEMPOTENCY_DISABLED", "true")
    admin_arn = rds_admin_secret(aws)
    value = {"engine": "mysql", "host": host, "port": 3306, "username": "app", "password": APP_PASSWORD}
    arn = create_secret(aws, "app-db", {**value, "masterarn": admin_arn})
    token = begin_rotation(aws, arn)
    if refused:
        with pytest.raises(AdminHostError, match=f"^{arn}: admin secret {admin_arn} has no host") as exc:
            handler(event(arn, token, "createSecret"))
        with pytest.raises(aws.exceptions.ResourceNotFoundException):
            aws.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        text = str(exc.value) + handler.output().text
        assert ADMIN_PASSWORD not in text and APP_PASSWORD not in text
    else:
        assert handler(event(arn, token, "createSecret"))["outcome"] == "created"


def test_check_reports_the_admin_host_and_what_confirmed_it(cli: Cli, aws: Any) -> None:
    """rotator check --no-database names the admin's host from RDS's tag, or fails admin.host."""
    admin_arn = rds_admin_secret(aws)
    value = {"engine": "mysql", "port": 3306, "username": "app", "password": APP_PASSWORD, "masterarn": admin_arn}
    good = create_secret(aws, "good", {**value, "host": READER})
    bad = create_secret(aws, "bad", {**value, "host": "db.internal"})
    run = cli("check", good, bad, "--no-database", "--json")
    assert run.code == 1
    found = {
        report["secret"]: {finding["check"]: finding for finding in report["findings"]}
        for report in run.json()["secrets"]
    }
    assert found[good]["admin.host"]["level"] == "ok"
    assert found[good]["admin.host"]["message"] == (
        f"the admin logs in to {WRITER}:3306 (tag {CLUSTER_TAG} (cluster 'prod-db'))"
    )
    assert found[bad]["admin.host"]["level"] == "fail"
    assert "db.internal is not an endpoint of it" in found[bad]["admin.host"]["message"]
    assert run.leaks([ADMIN_PASSWORD, APP_PASSWORD]) == []


# -- how the admin logs in -------------------------------------------------------------------


class Refused(Exception):
    """Stands in for the server: the options are recorded, no connection is made."""


def connect_options(login: Any) -> dict[str, Any]:
    recorded: dict[str, Any] = {}

    def connect(**options: Any) -> Any:
        recorded.update(options)
        raise Refused

    database = MySQLDatabase(Settings.from_env({}), connect=connect)
    with pytest.raises(Exception):  # noqa: B017 - Refused, wrapped by the adapter
        login(database)
    return recorded


def test_the_admin_login_always_verifies_tls_with_its_own_ca() -> None:
    """ "ssl": false in either secret and the application's ssl_ca do not reach the admin's
    login: verified TLS with the function's bundle (the app's ssl_ca, a path that does not
    exist, would have failed before any connection)."""
    application = app("db.internal", ssl=False, ssl_ca="/nonexistent/app-chosen-ca.pem")
    options = connect_options(lambda db: db.admin(admin(host="db.internal", ssl=False), application).__enter__())
    assert "ssl_disabled" not in options
    context = options["ssl"]
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert (options["host"], options["user"]) == ("db.internal", "admin")
    own_ca = connect_options(
        lambda db: db.admin(admin(host="db.internal", ssl_ca=str(BUNDLED_CA)), application).__enter__()
    )
    assert own_ca["ssl"].verify_mode == ssl.CERT_REQUIRED
    app_options = connect_options(lambda db: db.check_login(app("db.internal", ssl=False)))
    assert app_options["ssl_disabled"] is True  # the application's own choice, for its own logins


def test_every_login_refuses_the_cleartext_plugins() -> None:
    """PyMySQL is given a handler for mysql_clear_password and dialog that refuses at once."""
    for login in (
        lambda db: db.check_login(app("db.internal")),
        lambda db: db.admin(admin(host="db.internal"), app("db.internal")).__enter__(),
        lambda db: db.own_account([app("db.internal")]).__enter__(),
    ):
        plugins = connect_options(login)["auth_plugin_map"]
        assert set(plugins) == {"mysql_clear_password", "dialog"}
        for plugin in plugins.values():
            with pytest.raises(Exception, match=r"mysql_clear_password|dialog"):
                plugin(object())


def test_a_hostless_admin_never_reaches_the_adapter() -> None:
    """The adapter refuses an admin secret without a confirmed host instead of guessing one."""
    database = MySQLDatabase(Settings.from_env({}), connect=lambda **_: pytest.fail("connected"))
    with pytest.raises(AdminHostError, match="has no confirmed host"), database.admin(admin(), app("db.internal")):
        pass
