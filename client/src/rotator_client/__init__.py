"""Database credentials from AWS Secrets Manager that follow rotator's rotations.

    from rotator_client import SecretCredentials
    credentials = SecretCredentials("arn:aws:secretsmanager:...:secret:app-db-AbCdEf")
    connection = credentials.connect(lambda c: driver.connect(host=c.host, user=c.username, password=c.password))

Integrations: :mod:`rotator_client.pymysql` (``connect``), :mod:`rotator_client.pg8000`
(``connect``, ``connect_native``), :mod:`rotator_client.sqlalchemy` (``create_engine``).
The rules and what each rotation strategy means for an application: docs/applications.md
in rotator's repository.
"""

from rotator_client.credentials import Credentials, ReadStats, SecretCredentials
from rotator_client.errors import CredentialsError, SecretFormatError, SecretUnavailableError
from rotator_client.refusals import is_refused_login

__all__ = [
    "Credentials",
    "CredentialsError",
    "ReadStats",
    "SecretCredentials",
    "SecretFormatError",
    "SecretUnavailableError",
    "is_refused_login",
]
