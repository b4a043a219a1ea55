"""What every Lambda entry point of rotator sets up the same way before its Powertools
Logger, Tracer and Metrics: the rotation handler and the readiness check (canary)."""

from __future__ import annotations

import logging
import os

# Only botocore is patched: Secrets Manager and DynamoDB calls become subsegments
# named by operation (of their parameters X-Ray records only DynamoDB's table name).
# The database is traced by the adapter's own subsegments, so PyMySQL, httplib
# and the rest of what patch_all() would touch stay unpatched.
PATCHED_MODULES = ("botocore",)

# A missing namespace would make Powertools raise at flush time and hide the
# invocation's real error behind "Must contain a metric namespace": default it.
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or "Rotator"


def quiet_sdk_loggers() -> None:
    """botocore logs request and response bodies at DEBUG (SecretString, RandomPassword
    included). Lambda's log-level setting lowers the root logger, which botocore's
    loggers inherit; pinned here, no log level can make them print a secret."""
    for name in ("botocore", "boto3"):
        logging.getLogger(name).setLevel(logging.WARNING)
