"""The secret JSON as RDS, AWS's rotation templates and people write it.

Known keys are validated into a typed view; every other key is kept as it is and
written back unchanged, so attaching rotator to an existing secret never loses a
field another tool relies on.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from rotator.backends import ENGINES, engine_defaults  # the registry's engine names (AWS's secret JSON structure)
from rotator.errors import SecretFormatError

TWIN_SUFFIX = "_clone"

# The only keys a rotation may change. The pending version must agree with the
# current one on every other key, so a tampered pending version cannot redirect
# the function's logins (or the admin's) to another server.
CREDENTIAL_KEYS = frozenset({"username", "password"})

# "rotation_strategy": how the secret is rotated (docs/design.md, "Strategies").
ALTERNATING_USERS = "alternating-users"  # the default with a masterarn: user <-> user_clone
SINGLE_USER = "single-user"  # the default without: the same user name, a new password
STRATEGIES = (ALTERNATING_USERS, SINGLE_USER)


def secret_name(secret_id: str) -> str:
    """The secret's name from its ARN (``...:secret:NAME-AbCdEf``); a name is returned as is."""
    if not secret_id.startswith("arn:"):
        return secret_id
    resource = secret_id.split(":secret:", 1)[-1]
    name, _, suffix = resource.rpartition("-")
    return name if name and len(suffix) == 6 else resource


@dataclass(frozen=True)
class DatabaseSecret:
    secret_id: str
    username: str
    password: str = field(repr=False)
    host: str | None
    port: int
    dbname: str | None
    engine: str | None
    masterarn: str | None
    tls: bool
    ssl_ca: str | None
    strategy: str
    raw: dict[str, Any] = field(repr=False, compare=False)

    @classmethod
    def parse(
        cls, secret_id: str, secret_string: str | None, *, require_host: bool = True, family_of: str | None = None
    ) -> DatabaseSecret:
        """``family_of``: the engine whose defaults (port, database) apply when the value names
        no engine itself — an admin secret is read with its application secret's engine."""
        if secret_string is None:
            raise SecretFormatError(secret_id, "secret has no SecretString (binary secrets are not supported)")
        try:
            raw = json.loads(secret_string)
        except ValueError:
            # json's message quotes the document near the error: keep it out.
            raise SecretFormatError(secret_id, "secret string is not valid JSON") from None
        if not isinstance(raw, dict):
            raise SecretFormatError(secret_id, "secret string must be a JSON object")

        required = ("username", "password", "host") if require_host else ("username", "password")
        missing = [key for key in required if raw.get(key) in (None, "")]
        if missing:
            raise SecretFormatError(secret_id, f"missing required key(s): {', '.join(missing)}")
        for key in ("username", "password"):
            if not isinstance(raw[key], str):
                raise SecretFormatError(secret_id, f"'{key}' must be a string")

        engine = raw.get("engine")
        if engine is not None and engine not in ENGINES:
            raise SecretFormatError(
                secret_id, f"unsupported engine {engine!r}; expected one of {', '.join(sorted(ENGINES))}"
            )
        host = raw.get("host")
        if host is not None and (not isinstance(host, str) or not host.strip()):
            raise SecretFormatError(secret_id, "'host' must be a non-empty string")
        masterarn = raw.get("masterarn")
        if masterarn is not None and (not isinstance(masterarn, str) or not masterarn):
            raise SecretFormatError(secret_id, "'masterarn' must be a non-empty string")
        dbname = raw.get("dbname")
        if dbname is not None and not isinstance(dbname, str):
            raise SecretFormatError(secret_id, "'dbname' must be a string")
        defaults = engine_defaults(engine or family_of)
        tls = _tls(secret_id, raw.get("ssl"))
        # The secret's own engine only: an admin secret's "ssl" is never used (admin logins
        # are always verified), so one without an engine is not refused for it.
        if not tls and not engine_defaults(engine).plaintext_allowed:
            raise SecretFormatError(
                secret_id,
                f"'ssl': false is not accepted for engine {engine}: its logins always use verified TLS "
                "(remove the key or set it to true)",
            )
        ssl_ca = raw.get("ssl_ca")
        if ssl_ca is not None and (not isinstance(ssl_ca, str) or not ssl_ca):
            raise SecretFormatError(secret_id, "'ssl_ca' must be a path")

        return cls(
            secret_id=secret_id,
            username=raw["username"],
            password=raw["password"],
            host=host,
            port=_port(secret_id, raw.get("port", defaults.port)),
            dbname=dbname or defaults.dbname,
            engine=engine,
            masterarn=masterarn,
            tls=tls,
            ssl_ca=ssl_ca,
            strategy=_strategy(secret_id, raw.get("rotation_strategy"), masterarn),
            raw=raw,
        )

    @property
    def alternates(self) -> bool:
        """Alternating users (``user`` <-> ``user_clone``) rather than one user whose password changes."""
        return self.strategy == ALTERNATING_USERS

    @property
    def twin_username(self) -> str:
        """The other user of the alternating pair: ``name`` <-> ``name_clone``."""
        if self.username.endswith(TWIN_SUFFIX) and len(self.username) > len(TWIN_SUFFIX):
            return self.username[: -len(TWIN_SUFFIX)]
        return self.username + TWIN_SUFFIX

    def with_credentials(self, username: str, password: str) -> DatabaseSecret:
        raw = {**self.raw, "username": username, "password": password}
        return DatabaseSecret.parse(self.secret_id, json.dumps(raw))

    def differences(self, other: DatabaseSecret) -> list[str]:
        """Keys other than the credentials on which two versions of one secret disagree."""
        keys = (self.raw.keys() | other.raw.keys()) - CREDENTIAL_KEYS
        return sorted(key for key in keys if self.raw.get(key) != other.raw.get(key))

    def to_json(self) -> str:
        return json.dumps(self.raw)


def _port(secret_id: str, value: object) -> int:
    # A number, a numeric string, or a float with nothing after the point (3306.0,
    # as some tools write JSON numbers). bool is an int in Python: not a port.
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int | str):
        raise SecretFormatError(secret_id, "'port' must be a number")
    try:
        port = int(value)
    except ValueError:
        raise SecretFormatError(secret_id, "'port' must be a number") from None
    if not 0 < port < 65536:
        raise SecretFormatError(secret_id, f"'port' out of range: {port}")
    return port


def _strategy(secret_id: str, value: object, masterarn: str | None) -> str:
    if value is None:
        return ALTERNATING_USERS if masterarn else SINGLE_USER
    if value not in STRATEGIES:
        expected = ", ".join(STRATEGIES)
        raise SecretFormatError(secret_id, f"'rotation_strategy' must be one of {expected} (got {value!r})")
    if value == ALTERNATING_USERS and not masterarn:
        raise SecretFormatError(
            secret_id, "'rotation_strategy' alternating-users needs 'masterarn' (the admin secret that makes the twin)"
        )
    return str(value)


def _tls(secret_id: str, value: object) -> bool:
    # AWS's templates read a missing "ssl" as "try TLS, fall back to plaintext".
    # rotator reads it as "verified TLS": only an explicit false turns TLS off.
    if value is None or value is True:
        return True
    if value is False:
        return False
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise SecretFormatError(secret_id, "'ssl' must be true or false")
