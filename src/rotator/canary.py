"""Lambda entry point of the scheduled readiness check (the canary): will each
secret's next rotation work? Read-only.

EventBridge Scheduler invokes it (daily by default); it asks the questions of
:mod:`rotator.readiness` (the rules ``rotator check`` prints) of every secret the
stack rotates, and publishes the answers: per secret a ``Ready`` metric (1/0, by
``SecretArn``, the full ARN) with the failing checks as an EMF property, one JSON log
line per finding, and ``SecretsNotReady`` for the stack's alarm. A run that finds no
secret to check is not ready either (``SecretsNotReady`` 1, and a log line saying why). The event carries nothing
it needs. Wiring comes from :mod:`rotator.bootstrap`, once per container.
docs/observability.md lists every line and metric; none holds a secret value.
"""

from __future__ import annotations

from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rotator import bootstrap, telemetry
from rotator.errors import RotatorError
from rotator.readiness import Finding, Level, SecretReport
from rotator.settings import SettingsError

telemetry.quiet_sdk_loggers()
logger = Logger()
tracer = Tracer(auto_patch=True, patch_modules=telemetry.PATCHED_MODULES)
metrics = Metrics(namespace=telemetry.NAMESPACE)
# Ready by SecretName goes out as one EMF record per secret, printed as soon as the
# secret is checked (a run cut short still reports what it found).
per_secret_metrics = EphemeralMetrics(namespace=telemetry.NAMESPACE)

_LOGGERS = {Level.FAIL: logger.error, Level.WARN: logger.warning}
# The metric the stack's CanaryNotReadyAlarm watches (template.yaml; tests/template check they agree).
NOT_READY_METRIC = "SecretsNotReady"


@cache
def _container() -> bootstrap.Container:
    """The execution environment's wiring, built on the first invocation."""
    return bootstrap.build()


@logger.inject_lambda_context(clear_state=True, log_event=False)
@tracer.capture_lambda_handler(capture_response=False, capture_error=False)
@metrics.log_metrics(capture_cold_start_metric=False)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    metrics.clear_metrics()  # see rotator.handler: nothing may pile up when metrics are disabled
    try:
        result = _container().readiness.run(publish, lambda: context.get_remaining_time_in_millis() / 1000)
    except (RotatorError, SettingsError) as exc:
        # Not about one secret (the endpoint unreachable, credentials refused, a bad
        # setting): nothing was checked. The messages hold identifiers only.
        reason = exc.problem if isinstance(exc, RotatorError) else str(exc)
        logger.error("readiness check failed", extra={"error": type(exc).__name__, "reason": reason})
        # SecretsNotReady stays unpublished: a run that saw no secret must not clear the alarm.
        metrics.add_metric("SecretsChecked", MetricUnit.Count, 0)
        raise
    not_ready = [report.key for report in result.not_ready]
    metrics.add_metric("SecretsChecked", MetricUnit.Count, len(result.reports))
    if not result.reports and result.error is None:
        # Green about nothing is not green: a stack whose lists are empty and whose
        # listing found no secret rotated by its function checks nothing at all.
        logger.error(
            "readiness check found no secret to check",
            extra={
                "reason": _nothing_to_check(),
                "action": "attach secrets (RotatedSecretArns, or rotator attach with CanaryChecksAllRotatedSecrets "
                "true), or turn the check off (EnableCanary false)",
            },
        )
        metrics.add_metric(NOT_READY_METRIC, MetricUnit.Count, 1)
        tracer.put_annotation("all_ready", False)
        return {**result.as_dict(), "error": "no secret to check"}
    metrics.add_metric(NOT_READY_METRIC, MetricUnit.Count, len(not_ready))
    tracer.put_annotation("all_ready", not not_ready)
    summary = {"secrets_checked": len(result.reports), "not_ready": not_ready}
    if result.error is not None:
        # The configured secrets were checked and published; listing the others failed.
        logger.error("readiness check incomplete", extra={**summary, "reason": result.error.problem})
        raise result.error
    logger.info("readiness check done", extra=summary)
    return result.as_dict()


def publish(report: SecretReport) -> None:
    """One log line per finding and the secret's Ready metric, keyed by its full ARN (names
    repeat across regions and accounts; the name rides along for people)."""
    keys = {"secret_arn": report.key, "secret": report.label}
    for finding in report.findings:
        log = _LOGGERS.get(finding.level, logger.info)
        log(finding.message, extra={**keys, **_fields(finding)})
    per_secret_metrics.clear_metrics()
    per_secret_metrics.add_dimension("SecretArn", report.key)
    per_secret_metrics.add_metric("Ready", MetricUnit.Count, 0 if report.failed else 1)
    per_secret_metrics.add_metadata("failing_checks", report.failing_checks)
    per_secret_metrics.add_metadata("secret", report.label)
    per_secret_metrics.flush_metrics()


def _nothing_to_check() -> str:
    wanted = _container().settings.readiness
    if wanted.include_rotated_by_function:
        return (
            f"CANARY_SECRET_ARNS is empty and no secret's rotation function is {wanted.rotation_function_arn} "
            "(ListSecrets)"
        )
    return "CANARY_SECRET_ARNS is empty and CANARY_CHECK_ALL_ROTATED is false: nothing names a secret"


def _fields(finding: Finding) -> dict[str, str]:
    # "level" is the log record's own; the finding's level is its "result".
    return {"check": finding.check, "result": finding.level.value, "action": finding.action}
