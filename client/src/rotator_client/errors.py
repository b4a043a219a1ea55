"""What can go wrong while getting credentials; every message names the secret and the
problem, never a value of it."""

from __future__ import annotations


class CredentialsError(Exception):
    """Base of the client's own errors. A refused login is not one of them: the driver's
    own exception surfaces, so an application's existing error handling still applies."""

    def __init__(self, secret: str, problem: str) -> None:
        super().__init__(f"{secret}: {problem}")
        self.secret = secret
        self.problem = problem


class SecretUnavailableError(CredentialsError):
    """Secrets Manager could not be asked or refused to answer (after botocore's retries).
    ``code``: the service's error code (``AccessDeniedException``, ``ResourceNotFoundException``)
    or botocore's exception class (``EndpointConnectionError``, ``ProxyConnectionError``)."""

    def __init__(self, secret: str, problem: str, code: str) -> None:
        super().__init__(secret, problem)
        self.code = code


class SecretFormatError(CredentialsError):
    """The secret's value is not the JSON object a database secret holds."""
