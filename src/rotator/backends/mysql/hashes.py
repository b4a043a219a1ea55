"""Does a password match the hash a server stored for it? Computed here, never logged.

The admin can read an account's stored password hashes (``mysql.user``,
``mysql.global_priv``); checking a candidate password against them says which version's
password the account holds — its primary and, with MySQL's dual passwords, its secondary
one — without a login, so without a refused login that a failed-login limit would count.

Plugins whose hash is computed here, from the servers' documented formats (checked
against MariaDB 10.11 and MySQL 9.7 in tests/integration/test_lockout.py):

- ``mysql_native_password`` (both families): ``*`` + hex(SHA1(SHA1(password))), upper case;
- ``caching_sha2_password`` (MySQL): ``$A$`` + the rounds in thousands as three hex digits
  + ``$`` + a 20-byte salt + the 43-character SHA-256 crypt digest (Drepper's SHA-crypt,
  the salt not cut to 16 bytes);
- ``sha256_password`` (MySQL): ``$5$`` + the 20-byte salt + ``$`` + the digest, 5000 rounds.

Anything else (MariaDB's ``ed25519``, a plugin chain, an unknown form, more rounds than
:data:`MAX_ROUNDS`) is "unknown" (None): the caller then acts as it would without hashes.
Passwords are hashed as UTF-8, the bytes the server received (rotator's connections are
utf8mb4 and log in with UTF-8).
"""

from __future__ import annotations

import hashlib
import hmac

# Rounds above this are not computed (a pure-Python SHA-crypt costs ~0.5 ms per 1000
# rounds here): MySQL's default is 5000 (8.0) or 10,000 (9.x).
MAX_ROUNDS = 100_000
_ITOA64 = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
# Which digest bytes make each group of four characters (SHA-crypt's transposition for SHA-256).
_GROUPS: tuple[tuple[int, int, int], ...] = (
    (0, 10, 20),
    (21, 1, 11),
    (12, 22, 2),
    (3, 13, 23),
    (24, 4, 14),
    (15, 25, 5),
    (6, 16, 26),
    (27, 7, 17),
    (18, 28, 8),
    (9, 19, 29),
)
_SALT = 20
_DIGEST = 43


def matches(plugin: str, stored: str | bytes | None, password: str) -> bool | None:
    """Whether ``password`` is the one ``stored`` was made from; None when it cannot be told."""
    if stored is None:
        return None
    raw = stored.encode("utf-8") if isinstance(stored, str) else bytes(stored)
    key = password.encode("utf-8")
    if plugin == "mysql_native_password":
        if not raw:
            return not key
        return hmac.compare_digest(raw.upper(), native_hash(key))
    if plugin == "caching_sha2_password":
        return _caching_sha2(raw, key)
    if plugin == "sha256_password":
        return _sha256_password(raw, key)
    return None


def native_hash(key: bytes) -> bytes:
    return b"*" + hashlib.sha1(hashlib.sha1(key).digest()).hexdigest().upper().encode()  # noqa: S324 - the server's format


def _caching_sha2(raw: bytes, key: bytes) -> bool | None:
    if len(raw) != 7 + _SALT + _DIGEST or raw[:3] != b"$A$" or raw[6:7] != b"$":
        return None
    try:
        rounds = int(raw[3:6], 16) * 1000
    except ValueError:
        return None
    if not 0 < rounds <= MAX_ROUNDS:
        return None
    salt, digest = raw[7 : 7 + _SALT], raw[7 + _SALT :]
    return hmac.compare_digest(sha256_crypt(key, salt, rounds), digest)


def _sha256_password(raw: bytes, key: bytes) -> bool | None:
    if len(raw) != 4 + _SALT + _DIGEST or raw[:3] != b"$5$" or raw[3 + _SALT : 4 + _SALT] != b"$":
        return None
    salt, digest = raw[3 : 3 + _SALT], raw[4 + _SALT :]
    return hmac.compare_digest(sha256_crypt(key, salt, 5000), digest)


def sha256_crypt(key: bytes, salt: bytes, rounds: int) -> bytes:
    """The SHA-256 crypt digest (43 characters) of ``key`` with ``salt`` and ``rounds``, as
    Drepper's specification computes it, with the salt used whole (MySQL's 20 bytes)."""
    sha = hashlib.sha256
    alternate = sha(key + salt + key).digest()
    context = sha(key + salt)
    remaining = len(key)
    while remaining > 32:
        context.update(alternate)
        remaining -= 32
    context.update(alternate[:remaining])
    bits = len(key)
    while bits:
        context.update(alternate if bits & 1 else key)
        bits >>= 1
    digest = context.digest()
    p_bytes = _stretch(sha(key * len(key)).digest(), len(key))
    s_bytes = _stretch(sha(salt * (16 + digest[0])).digest(), len(salt))
    for round_ in range(rounds):
        step = sha(p_bytes if round_ & 1 else digest)
        if round_ % 3:
            step.update(s_bytes)
        if round_ % 7:
            step.update(p_bytes)
        step.update(digest if round_ & 1 else p_bytes)
        digest = step.digest()
    out: list[str] = []
    for first, second, third in _GROUPS:
        _encode(out, (digest[first] << 16) | (digest[second] << 8) | digest[third], 4)
    _encode(out, (digest[31] << 8) | digest[30], 3)
    return "".join(out).encode()


def _stretch(block: bytes, length: int) -> bytes:
    return (block * (length // len(block) + 1))[:length]


def _encode(out: list[str], value: int, count: int) -> None:
    for _ in range(count):
        out.append(_ITOA64[value & 0x3F])
        value >>= 6
