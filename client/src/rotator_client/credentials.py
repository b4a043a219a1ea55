"""Database credentials from a Secrets Manager secret that rotator rotates.

:class:`SecretCredentials` holds one cached read of the secret's AWSCURRENT version
for a whole process, shared by its threads:

- :meth:`~SecretCredentials.get` answers from the cache; the secret is read again
  when the cached value is older than ``ttl`` (under a lock: one read, whatever the
  number of threads that find it expired).
- :meth:`~SecretCredentials.connect` logs in with the cached value; when the database
  refuses that login (:func:`~rotator_client.refusals.is_refused_login`) it asks for
  **one** refresh and retries **once** with what the refresh found. There is no loop:
  a refusal of the retry surfaces as the driver raised it.
- The refresh is shared by every thread of the process: each value carries the
  *generation* of the read that produced it, and a thread refused with generation
  ``g`` reads the secret again only if the cache is still at ``g``; threads refused
  with a value another thread has already replaced retry with the replacement. So a
  rotation costs one ``GetSecretValue`` per process, not one per connection.
- A re-read that finds the very login that was refused (single user without dual
  passwords, between setSecret and finishSecret; or a password that is simply wrong)
  does not retry — the same password would only count once more against the
  server's failed-login limits — and holds off further refusal-driven reads: for
  ``min_refresh_interval`` seconds after the first such read, twice as long after each
  further one, up to ``max_refresh_interval``; a read that finds a newer value ends
  the hold-off. A window of a second or two is followed within a fraction of it,
  while a refusal that persists costs one read per ``max_refresh_interval``, not one
  per connection attempt.

Nothing here logs, raises or ``repr``s a password; no frame of this package holds one
in a local variable (error trackers that print locals see a :class:`Credentials`
repr). What the client reads is never written anywhere.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol, TypeVar

import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from rotator_client.errors import CredentialsError, SecretFormatError, SecretUnavailableError
from rotator_client.refusals import is_refused_login

logger = logging.getLogger("rotator_client")

T = TypeVar("T")

DEFAULT_TTL = 300.0
# The hold-off after a re-read that found nothing newer: it starts short, so that a
# single-user window (setSecret to finishSecret: a few Lambda invocations) is followed
# closely (measured: docs/reliability.md), and doubles up to the maximum.
DEFAULT_MIN_REFRESH_INTERVAL = 0.1
DEFAULT_MAX_REFRESH_INTERVAL = 10.0
# How soon a TTL read that failed is tried again while the cached value is still served.
RETRY_FAILED_READ_AFTER = 30.0
# Bounded network waits: a Secrets Manager that does not answer must not hold every
# thread that wants a connection for botocore's default 60 s per attempt.
BOTO_CONFIG = Config(connect_timeout=5, read_timeout=10, retries={"mode": "standard", "max_attempts": 3})


class SecretsManagerClient(Protocol):
    """What the client uses of a botocore/boto3 Secrets Manager client."""

    def get_secret_value(self, *, SecretId: str, VersionStage: str) -> Mapping[str, Any]: ...


@dataclass(frozen=True)
class Credentials:
    """One version of the secret. ``repr`` shows no password; two values are equal when
    they log in the same way (same user, password, host, port and database)."""

    username: str
    password: str = field(repr=False)
    host: str | None
    port: int | None
    dbname: str | None
    engine: str | None
    version_id: str = field(compare=False)
    generation: int = field(compare=False)  # the read that produced it (see the module's docstring)
    fields: Mapping[str, Any] = field(repr=False, compare=False)  # the whole secret JSON, password included


class ReadStats(NamedTuple):
    """What a :class:`SecretCredentials` has done so far (for an application's metrics)."""

    reads: int  # GetSecretValue calls that returned a value
    refreshes_after_refusal: int  # of which started by a refused login
    failed_reads: int
    refused_logins: int
    retries: int  # logins retried with a newer value after a refusal


@dataclass(frozen=True)
class _Cached:
    credentials: Credentials
    expires_at: float
    read_at: float
    # After a refusal-driven read that found the refused login again: how long further
    # refusals wait before reading (0: no hold-off).
    hold_off: float = 0.0


class SecretCredentials:
    """``SecretCredentials(secret_id)``: the credentials of one secret for this process.

    ``client``: a Secrets Manager client to use (boto3 or botocore); by default one is
    made with ``region_name`` and ``endpoint_url`` (else botocore's own resolution:
    ``AWS_ENDPOINT_URL_SECRETS_MANAGER``, ``AWS_ENDPOINT_URL``, the region's endpoint —
    an interface endpoint with private DNS answers that name), honouring
    ``HTTPS_PROXY``/``NO_PROXY`` as botocore does. ``refused_login`` decides which
    driver errors start a refresh.
    """

    def __init__(
        self,
        secret_id: str,
        *,
        ttl: float = DEFAULT_TTL,
        min_refresh_interval: float = DEFAULT_MIN_REFRESH_INTERVAL,
        max_refresh_interval: float = DEFAULT_MAX_REFRESH_INTERVAL,
        client: SecretsManagerClient | None = None,
        region_name: str | None = None,
        endpoint_url: str | None = None,
        refused_login: Callable[[BaseException], bool] = is_refused_login,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if ttl <= 0 or not 0 <= min_refresh_interval <= max_refresh_interval:
            raise ValueError("ttl must be positive and 0 <= min_refresh_interval <= max_refresh_interval")
        self.secret_id = secret_id
        self.name = secret_name(secret_id)
        self.ttl = ttl
        self.min_refresh_interval = min_refresh_interval
        self.max_refresh_interval = max_refresh_interval
        self.client: SecretsManagerClient = client or default_client(region_name=region_name, endpoint_url=endpoint_url)
        self._refused_login = refused_login
        self._clock = clock
        self._lock = threading.Lock()  # one read at a time; readers of a fresh cache never take it
        self._cached: _Cached | None = None
        self._generation = 0
        self._stats = dict.fromkeys(ReadStats._fields, 0)

    def __repr__(self) -> str:
        return f"SecretCredentials({self.name!r}, ttl={self.ttl})"

    # -- the cache ---------------------------------------------------------------

    def get(self) -> Credentials:
        """The cached AWSCURRENT, read first if missing or older than ``ttl``. When a
        TTL read fails, the cached value is served on (it still logs in until a
        rotation says otherwise) and the read is tried again after a while."""
        cached = self._cached  # one attribute read: no lock while the cache is fresh
        if cached is not None and self._clock() < cached.expires_at:
            return cached.credentials
        with self._lock:
            cached = self._cached
            now = self._clock()
            if cached is not None and now < cached.expires_at:
                return cached.credentials  # another thread read it while this one waited
            if cached is None:
                return self._read(now, after_refusal=None).credentials
            try:
                return self._read(now, after_refusal=None).credentials
            except CredentialsError as exc:
                retry_in = min(self.ttl, RETRY_FAILED_READ_AFTER)
                logger.warning(
                    "could not re-read the secret after its TTL (%s); serving the cached value, next try in %.0f s",
                    exc,
                    retry_in,
                )
                self._cached = _Cached(cached.credentials, now + retry_in, cached.read_at, cached.hold_off)
                return cached.credentials

    def refresh_after_refusal(self, refused: Credentials) -> Credentials:
        """The value to retry with after the database refused ``refused``: a fresh read
        if the cache still holds the generation that was refused (one read for all the
        threads refused with it), else what the cache holds now. Equal to ``refused``
        when nothing newer exists. Raises a :class:`CredentialsError` if the read fails."""
        with self._lock:
            self._stats["refused_logins"] += 1
            cached = self._cached
            if cached is None:
                return self._read(self._clock(), after_refusal=refused).credentials
            if cached.credentials.generation != refused.generation:
                return cached.credentials  # already replaced by another thread's read
            now = self._clock()
            if now - cached.read_at < cached.hold_off:
                return cached.credentials  # a re-read moments ago found nothing newer
            return self._read(now, after_refusal=refused).credentials

    def stats(self) -> ReadStats:
        with self._lock:
            return ReadStats(**self._stats)

    # -- the rule ----------------------------------------------------------------

    def connect(self, login: Callable[[Credentials], T]) -> T:
        """``login(credentials)`` with the cached value; if the database refuses it, one
        shared refresh and one retry with a newer value. The retry's refusal, a refusal
        for which nothing newer exists, and every other error surface as raised."""
        credentials = self.get()
        try:
            return login(credentials)
        except Exception as exc:
            if not self._refused_login(exc):
                raise
            refused = exc
        try:
            fresh = self.refresh_after_refusal(credentials)
        except CredentialsError as read_failed:
            raise refused from read_failed
        if fresh == credentials:
            raise refused
        with self._lock:
            self._stats["retries"] += 1
        return login(fresh)

    # -- reading -----------------------------------------------------------------

    def _read(self, now: float, *, after_refusal: Credentials | None) -> _Cached:
        """GetSecretValue(AWSCURRENT) into the cache; the caller holds the lock."""
        try:
            response = self.client.get_secret_value(SecretId=self.secret_id, VersionStage="AWSCURRENT")
        except ClientError as exc:
            self._stats["failed_reads"] += 1
            code = str(exc.response.get("Error", {}).get("Code", "ClientError"))
            raise SecretUnavailableError(self.name, f"GetSecretValue failed: {exc}", code) from None
        except BotoCoreError as exc:
            self._stats["failed_reads"] += 1
            name = type(exc).__name__
            raise SecretUnavailableError(self.name, f"cannot reach Secrets Manager: {name}: {exc}", name) from None
        try:
            credentials = parse(self.name, response, self._generation + 1)
        except SecretFormatError:
            self._stats["failed_reads"] += 1
            raise
        self._generation += 1
        self._stats["reads"] += 1
        previous = self._cached
        hold_off = 0.0
        if after_refusal is not None:
            self._stats["refreshes_after_refusal"] += 1
            unanswered = credentials == after_refusal
            if unanswered:
                last = previous.hold_off if previous is not None else 0.0
                hold_off = min(self.max_refresh_interval, max(self.min_refresh_interval, 2 * last))
            logger.info(
                "login refused with secret %s version %s; re-read: %s",
                self.name,
                after_refusal.version_id,
                f"no newer value (next re-read after {hold_off:g} s)"
                if unanswered
                else f"version {credentials.version_id}",
            )
        elif previous is not None and credentials == previous.credentials:
            hold_off = previous.hold_off  # a TTL read that found the same login changes nothing
        cached = _Cached(credentials, now + self.ttl, now, hold_off)
        self._cached = cached
        return cached


def parse(name: str, response: Mapping[str, Any], generation: int) -> Credentials:
    """A GetSecretValue answer as :class:`Credentials`; errors name the problem, not the content."""
    text = response.get("SecretString")
    if not isinstance(text, str):
        raise SecretFormatError(name, "the secret has no SecretString (a binary secret is not a database secret)")
    try:
        value = json.loads(text)
    except ValueError:
        raise SecretFormatError(name, "the secret string is not valid JSON") from None  # json quotes the text
    if not isinstance(value, dict):
        raise SecretFormatError(name, "the secret string is not a JSON object")
    missing = [key for key in ("username", "password") if not isinstance(value.get(key), str) or not value[key]]
    if missing:
        raise SecretFormatError(name, f"missing or not a string: {', '.join(missing)}")
    port = value.get("port")
    if port is not None:
        try:
            port = int(port)
        except (TypeError, ValueError):
            raise SecretFormatError(name, "'port' is not a number") from None
    return Credentials(
        username=value["username"],
        password=value["password"],
        host=_text(value.get("host")),
        port=port,
        dbname=_text(value.get("dbname")),
        engine=_text(value.get("engine")),
        version_id=str(response.get("VersionId", "")),
        generation=generation,
        fields=value,
    )


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def secret_name(secret_id: str) -> str:
    """The secret's name from its ARN (``...:secret:NAME-AbCdEf``); a name is returned as is."""
    if not secret_id.startswith("arn:"):
        return secret_id
    resource = secret_id.split(":secret:", 1)[-1]
    name, _, suffix = resource.rpartition("-")
    return name if name and len(suffix) == 6 else resource


def default_client(*, region_name: str | None = None, endpoint_url: str | None = None) -> SecretsManagerClient:
    """A botocore Secrets Manager client of its own session (thread-safe once made)."""
    session = botocore.session.get_session()
    client: SecretsManagerClient = session.create_client(  # type: ignore[assignment]  # botocore's clients are dynamic
        "secretsmanager", region_name=region_name, endpoint_url=endpoint_url, config=BOTO_CONFIG
    )
    return client
