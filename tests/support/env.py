"""The environment every local run of the function shares: fake credentials, a
region, no instance metadata, Powertools named and tracing off. The tests, the
demo, the benchmarks and the soak add their own keys to it."""

from __future__ import annotations

LOCAL_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
    "AWS_EC2_METADATA_DISABLED": "true",
    "POWERTOOLS_SERVICE_NAME": "rotator",
    "POWERTOOLS_METRICS_NAMESPACE": "Rotator",
    "POWERTOOLS_TRACE_DISABLED": "true",
}
