"""The parts of issue 25's repairs that need no server: which password a stored hash was
made from, lock names that fit both servers, and the order in which a single user's
logins are tried (a fake secret store: what each version holds and which labels)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest

from rotator.backends.mysql.base import password_lock_name
from rotator.backends.mysql.hashes import MAX_ROUNDS, matches, sha256_crypt
from rotator.ports import SecretDescription, VersionInfo
from rotator.recovery import UNLABELLED_TRIED, LikelyLogins
from rotator.secret import DatabaseSecret
from rotator.settings import PasswordPolicy

# Captured from MySQL 9.7.4 and MariaDB 10.11.19 (tests/integration/test_lockout.py checks the
# same computation against live servers). Hashes of test passwords: not secrets.
CACHING_SHA2 = bytes.fromhex(
    "244124303041240F3B4B0572282A734A261874384D675D3345680F51306575696A3130796C42546B303247576E6A5A6E6A4D32744A"
    "2E626536476F573353616642374A367644"
)
CACHING_SHA2_ASCII = bytes.fromhex(
    "244124303041243B1B4E1755392504174B272B7777647E0837045A482F5453436574413457414650484C5A416442476535456B5558"
    "717948615A363635336C48702E414C5644"
)
SHA256_PASSWORD = bytes.fromhex(
    "243524062B7F2F516E2537035A341D616A0B137D61017724354831704C51503267344662676A37627030754F553931592F694F7234"
    "684959502F6F48494B6332303430"
)
NATIVE = "*AD7D9782A6916ECF5E4F5114EC302752D6353AF3"


@pytest.mark.parametrize(
    ("plugin", "stored", "password"),
    [
        ("caching_sha2_password", CACHING_SHA2, "Pässwörd"),
        ("caching_sha2_password", CACHING_SHA2_ASCII, "pw-unit-1"),
        ("sha256_password", SHA256_PASSWORD, "密码🔑pw"),
        ("mysql_native_password", NATIVE, "Pässwörd"),
    ],
)
def test_a_stored_hash_tells_its_password_from_others(plugin: str, stored: bytes | str, password: str) -> None:
    """Each plugin's stored form, as the servers wrote it, matches the password it was made from (as
    UTF-8) and nothing else: not its latin-1 reading, not a neighbour."""
    assert matches(plugin, stored, password) is True
    assert matches(plugin, stored, password + "x") is False
    if not password.isascii():  # what PyMySQL would have sent for a str password
        assert matches(plugin, stored, password.encode("utf-8").decode("latin-1")) is False


def test_what_cannot_be_computed_is_unknown_not_false() -> None:
    """Another plugin, a malformed string, too many rounds or nothing stored: None (the caller then
    acts as without hashes), never a confident False."""
    assert matches("ed25519", "ZIgUREUg5PVgQ6LskhXmO+eZLS0nC8be6HPjYWR4YJY", "pw") is None
    assert matches("caching_sha2_password", "$A$005$short", "pw") is None
    too_many = b"$A$" + b"%03X" % (MAX_ROUNDS // 1000 + 1) + CACHING_SHA2[6:]
    assert matches("caching_sha2_password", too_many, "Pässwörd") is None
    assert matches("mysql_native_password", None, "pw") is None
    assert matches("mysql_native_password", "", "") is True


def test_sha256_crypt_is_drepper_with_the_salt_whole() -> None:
    """The specification's own test vectors (Drepper's SHA-crypt: 5000 and 10,000 rounds; the
    specification cuts the salt to 16 bytes, which MySQL's 20-byte salt is not)."""
    assert sha256_crypt(b"Hello world!", b"saltstring", 5000) == b"5B8vYYiY.CVt1RlTTf8KbXBH3hsxY/GNooZaBBGWEc5"
    assert sha256_crypt(b"Hello world!", b"saltstringsaltst", 10_000) == b"3xv.VbSHBb41AL9AvLeujZkZRBAwqFMz2.opqey6IcA"


@pytest.mark.parametrize("user", ["app", "a" * 47, "用" * 32, "😀" * 80, "x" * 200])
def test_lock_names_fit_both_servers_and_are_stable(user: str) -> None:
    """At most 64 bytes (MySQL counts 64 characters, MariaDB 192 bytes); the usual names stay readable;
    a long one is hashed, the same on every delivery, and different users get different names."""
    name = password_lock_name(user)
    assert len(name.encode("utf-8")) <= 64
    assert name == password_lock_name(user)
    if len(f"rotator.password:{user}".encode()) <= 64:
        assert name == f"rotator.password:{user}"
    else:
        assert name.startswith("rotator.password#") and name != password_lock_name(user + "2")


# -- the order of a single user's logins ------------------------------------------------------

ARN = "arn:aws:secretsmanager:us-east-1:123456789012:secret:app-db-AbCdEf"
BASE = {"engine": "mysql", "host": "db.internal", "port": 3306, "username": "app"}
T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)


class FakeStore:
    """The secret store port, as far as LikelyLogins uses it; counts reads."""

    def __init__(self, versions: dict[str, tuple[list[str], dict[str, Any]]]) -> None:
        self.versions = versions
        self.reads: list[str] = []
        self.listed = 0

    def describe(self, secret_id: str) -> SecretDescription:
        return SecretDescription(ARN, "app-db", True, {v: labels for v, (labels, _) in self.versions.items() if labels})

    def get_version(self, secret_id: str, version_id: str, stage: str | None) -> str | None:
        self.reads.append(version_id)
        return json.dumps(self.versions[version_id][1])

    def unlabelled_versions(self, secret_id: str, limit: int) -> list[VersionInfo]:
        self.listed += 1
        unlabelled = [v for v, (labels, _) in self.versions.items() if not labels]
        return [VersionInfo(v, (), T0 + datetime.timedelta(days=i)) for i, v in enumerate(unlabelled)][::-1][:limit]

    # unused by LikelyLogins
    def get_admin(self, secret_id: str, *, refresh: bool = False) -> str | None:
        raise NotImplementedError

    def put_pending(self, secret_id: str, token: str, secret_string: str, rotation_token: str | None) -> None:
        raise NotImplementedError

    def move_label(self, secret_id: str, stage: str, to_version: str, from_version: str | None) -> None:
        raise NotImplementedError

    def random_password(self, secret_id: str, policy: PasswordPolicy) -> str:
        raise NotImplementedError

    def labelled_versions(self, secret_id: str) -> list[VersionInfo]:
        raise NotImplementedError

    def secret_arns(self, function_arn: str | None = None) -> list[str]:
        raise NotImplementedError


def value(password: str, **changes: Any) -> dict[str, Any]:
    return {**BASE, "password": password, **changes}


def order(store: FakeStore, token: str) -> list[str]:
    """The passwords offered, in order, each read only when the one before was refused."""
    description = store.describe(ARN)
    current_version = description.version_with("AWSCURRENT")
    assert current_version is not None
    current = DatabaseSecret.parse(ARN, json.dumps(store.versions[current_version][1]))
    pending = DatabaseSecret.parse(ARN, json.dumps(store.versions[token][1]))
    return [login.password for login in LikelyLogins(store, description, token, current, pending)]


def test_a_first_attempt_tries_awscurrent_and_never_reads_more() -> None:
    """ROTATOR_SETTING on AWSCURRENT (the last rotation's): setSecret of this version has not begun,
    so the pending password is never offered; only a refusal reads AWSPREVIOUS, then the unlabelled."""
    store = FakeStore(
        {
            "v0": (["AWSPREVIOUS"], value("p0")),
            "v1": (["AWSCURRENT", "ROTATOR_SETTING"], value("p1")),
            "v2": (["AWSPENDING"], value("p2")),
        }
    )
    logins = LikelyLogins(store, store.describe(ARN), "v2", *_current_and_pending(store, "v1", "v2"))
    first = next(iter(logins))
    assert first.password == "p1" and store.reads == [] and store.listed == 0
    assert order(store, "v2") == ["p1", "p0"]


def test_a_retry_tries_the_pending_password_first() -> None:
    """ROTATOR_SETTING on the pending version: its setSecret began the change; a retry tries it first,
    so a failed-login limit of 1 is never spent on AWSCURRENT's."""
    store = FakeStore({"v1": (["AWSCURRENT"], value("p1")), "v2": (["AWSPENDING", "ROTATOR_SETTING"], value("p2"))})
    assert order(store, "v2") == ["p2", "p1"]


def test_the_next_rotation_tries_an_abandoned_versions_password_first() -> None:
    """An abandoned rotation's version (AWSPENDING removed, ROTATOR_SETTING still on it) is tried
    before AWSCURRENT; the new pending version is not tried (its setSecret has not begun)."""
    store = FakeStore(
        {
            "v1": (["AWSCURRENT"], value("p1")),
            "v2": (["ROTATOR_SETTING"], value("p2")),
            "v3": (["AWSPENDING"], value("p3")),
        }
    )
    assert order(store, "v3") == ["p2", "p1"]


def test_without_the_label_anywhere_the_old_order_and_the_unlabelled_versions() -> None:
    """No version carries ROTATOR_SETTING (a rotation begun before it existed): AWSCURRENT, the pending
    one, AWSPREVIOUS, then the newest unlabelled versions of the same user, at most UNLABELLED_TRIED;
    another user's version (an alternating twin's) and a repeated password are skipped."""
    versions: dict[str, tuple[list[str], dict[str, Any]]] = {
        "old": ([], value("p-old")),
        "twin": ([], value("p-twin", username="app_clone")),
        **{f"u{i}": ([], value(f"p-u{i}")) for i in range(UNLABELLED_TRIED)},
        "dup": ([], value("p1")),
        "v0": (["AWSPREVIOUS"], value("p0")),
        "v1": (["AWSCURRENT"], value("p1")),
        "v2": (["AWSPENDING"], value("p2")),
    }
    store = FakeStore(versions)
    offered = order(store, "v2")
    assert offered[:3] == ["p1", "p2", "p0"]
    unlabelled = offered[3:]
    assert "p-twin" not in unlabelled and "p1" not in unlabelled and "p-old" not in unlabelled
    assert len(unlabelled) <= UNLABELLED_TRIED


def _current_and_pending(store: FakeStore, current: str, pending: str) -> tuple[DatabaseSecret, DatabaseSecret]:
    return (
        DatabaseSecret.parse(ARN, json.dumps(store.versions[current][1])),
        DatabaseSecret.parse(ARN, json.dumps(store.versions[pending][1])),
    )
