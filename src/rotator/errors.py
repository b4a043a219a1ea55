"""Every error rotator raises on purpose.

Each message names the secret and what failed, and never a credential: messages
reach CloudWatch, the Secrets Manager console (as the rotation failure reason) and
X-Ray, so they are built only from identifiers (ARNs, user names, hosts, error
codes). Driver and SDK exceptions are wrapped at the boundary with ``raise ... from``
so the cause stays available to a debugger, but their text is not copied in.
"""

from __future__ import annotations

import enum


class RotatorError(Exception):
    """Base class: a rotation step failed for a reason an operator can act on."""

    def __init__(self, secret_id: str, problem: str) -> None:
        self.secret_id = secret_id
        self.problem = problem
        super().__init__(f"{secret_id}: {problem}")


class InvalidEventError(RotatorError):
    """The invocation event is not a Secrets Manager rotation event."""


class RotationStateError(RotatorError):
    """The secret is not in a state this step may act on (rotation off, token not staged...)."""


class SecretFormatError(RotatorError):
    """A secret value is not JSON, lacks a required key or holds an unusable value."""


class SecretMismatchError(RotatorError):
    """The pending and current versions disagree on something other than the credentials."""


class StoreFailure(enum.StrEnum):
    """Why a Secrets Manager call failed, in the terms callers act on."""

    NOT_FOUND = "not-found"
    DENIED = "denied"  # IAM, a resource or endpoint policy, or KMS refused
    CREDENTIALS = "credentials"  # the caller's credentials are missing or bad: every call fails alike
    RETRY = "retry"  # throttled or unavailable after botocore's retries
    UNREACHABLE = "unreachable"  # no connection to the endpoint: every call fails alike
    OTHER = "other"


class UnsafeTargetError(RotatorError):
    """The rotation would change an account it must never change: the admin secret's own,
    another admin, a reserved account of the server, or a role. Refused before any change."""


class AdminHostError(RotatorError):
    """An admin secret has no host and nothing an operator (or RDS's own tag) confirmed says
    where its credentials may go, or what confirms it disagrees: refused before any login,
    so the admin's password is never sent to a host the application secret alone named
    (rotator.admin_host)."""


class SecretStoreError(RotatorError):
    """Secrets Manager refused or failed a call (access denied, throttled, not found...).

    ``failure`` says what kind of failure it is; ``code`` is the AWS error code
    (``AccessDeniedException``...) or, for a failure on the client side, the
    botocore exception's class name.
    """

    def __init__(
        self, secret_id: str, problem: str, failure: StoreFailure = StoreFailure.OTHER, code: str | None = None
    ) -> None:
        super().__init__(secret_id, problem)
        self.failure = failure
        self.code = code

    def about(self, secret_id: str, prefix: str) -> SecretStoreError:
        """The same failure, reported against another secret (``prefix: problem``)."""
        return SecretStoreError(secret_id, f"{prefix}: {self.problem}", self.failure, self.code)


class DatabaseError(RotatorError):
    """The database failed an operation."""


class DatabaseUnreachableError(DatabaseError):
    """No connection could be opened (network, DNS, timeout, server down)."""


class ConcurrentChangeError(DatabaseError):
    """Another session changed the same account at the same moment (PostgreSQL's "tuple
    concurrently updated", a serialization failure or deadlock): this statement failed, but
    the account may hold the other session's change, e.g. a duplicate delivery's password."""


class DatabaseAuthError(DatabaseError):
    """The server rejected the credentials."""


class AccountStateError(DatabaseAuthError):
    """The password is right, but the account cannot be used as it is: locked, or its
    password expired. Trying other passwords would not help (and counts as failed logins)."""


class AccountLockedError(AccountStateError):
    """The account is locked: ACCOUNT LOCK, or a lock-out after failed logins."""


class PasswordExpiredError(AccountStateError):
    """The account's password has expired: the server accepts nothing until it is changed."""


class DatabaseTLSError(DatabaseError):
    """The TLS handshake failed: certificate not trusted, wrong host name, or TLS not offered."""


class CleartextAuthError(DatabaseError):
    """The server asked for an authentication plugin that sends the password as typed
    (``mysql_clear_password``, ``dialog``: PAM, LDAP simple bind). Refused before anything
    was sent: rotator answers no such request, on any login."""


class PrivilegeMismatchError(DatabaseError):
    """The twin user's privileges differ from the current user's."""


class AdminPrivilegeError(DatabaseError):
    """The admin cannot create the twin or give it everything the user holds. Refused
    before any change to the database."""


class AccountReadError(DatabaseError):
    """The admin cannot read an account's definition (``SHOW CREATE USER``, ``SHOW GRANTS``),
    which testSecret compares: it needs SELECT on the ``mysql`` schema. setSecret asks
    before its first change, so that a rotation it cannot verify does not start."""


class NotPrimaryPasswordError(DatabaseError):
    """A password change named a current password that is not the account's primary one
    (MySQL error 3891); nothing was changed. The dual-password path reads it as "an
    earlier attempt already made the new password primary"."""


class CurrentPasswordRequiredError(DatabaseError):
    """A password change that did not name the current password was refused: the account
    requires it (PASSWORD REQUIRE CURRENT, MySQL error 3892); nothing was changed."""


class ForeignPasswordError(DatabaseError):
    """The account's password was changed outside rotator in a way the rotation cannot
    follow without locking someone out; nothing was changed. The message says what was
    found and how to resolve it."""


class UnsupportedDatabaseError(DatabaseError):
    """The server or account uses something rotator cannot reproduce safely."""


class UnsupportedEngineError(UnsupportedDatabaseError):
    """The secret's ``engine`` names a family no installed backend serves (yet)."""


class EngineMismatchError(SecretMismatchError):
    """The server the secret's host answers from is not of the family its ``engine`` names."""


class StatementBuildError(ValueError):
    """A name or keyword cannot be written into a statement safely. Raised where SQL is
    built (no secret known there); the database adapter reports it as a
    :class:`DatabaseError` naming the secret and the statement."""


class UnexpectedError(RotatorError):
    """An error rotator did not anticipate. Its message is withheld: it could quote anything."""


class InsufficientPrivilegeError(DatabaseError):
    """The server refused a statement for want of a privilege (PostgreSQL SQLSTATE 42501,
    "permission denied"). Raised by the PostgreSQL backend; the message names the
    statement's purpose and the object, never the statement's text."""
