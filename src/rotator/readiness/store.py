"""Secrets Manager's side of a secret's readiness: is rotation configured for this
function, is a rotation stuck, did the last one complete, when is the next one due."""

from __future__ import annotations

import datetime

from rotator import schedule
from rotator.arns import function_qualifier
from rotator.errors import SecretStoreError
from rotator.findings import STORE_HINTS, Add, Finding, Level
from rotator.ports import CURRENT, PENDING, TESTED, SecretDescription, SecretStore
from rotator.schedule import PendingVersion, format_date, pending_version, schedule_state, schedule_text


class StoreChecks:
    def __init__(
        self,
        store: SecretStore,
        *,
        stale_after: datetime.timedelta | None,
        function_arn: str | None,
        expect_rotation: bool,
    ) -> None:
        self.store = store
        self.stale_after = stale_after
        self.function_arn = function_arn
        self.expect_rotation = expect_rotation

    def run(self, details: SecretDescription, add: Add) -> None:
        self._rotation_state(details, add)

    def _rotation_state(self, details: SecretDescription, add: Add) -> None:
        self._rotation_config(details, add)
        stuck: PendingVersion | None = None
        pending = details.version_with(PENDING)
        if pending is not None and pending != details.version_with(CURRENT):
            try:
                versions = self.store.labelled_versions(details.arn)
            except SecretStoreError as exc:
                add(Finding("rotation.state", Level.FAIL, exc.problem, STORE_HINTS.get(exc.failure, "")))
                return
            stuck = pending_version(details, versions, schedule.utcnow(), self.stale_after)
        if stuck is None:
            add(Finding("rotation.state", Level.OK, "no rotation in progress"))
        elif stuck.stale:
            add(_stuck_rotation(details, stuck))
        else:
            add(
                Finding(
                    "rotation.state",
                    Level.WARN,
                    f"a rotation is in progress: {stuck.describe()}",
                    "wait for it to finish, then check again (rotator status)",
                )
            )
        if details.rotation_enabled:
            self._schedule(details, stuck, add)

    def _rotation_config(self, details: SecretDescription, add: Add) -> None:
        expected = self.expect_rotation
        if not details.function_arn:
            if expected:
                add(
                    Finding(
                        "rotation.config",
                        Level.FAIL,
                        "rotation is not configured: no rotation will run",
                        "attach it: the stack's RotatedSecretArns, or rotator attach",
                    )
                )
            else:
                add(Finding("rotation.config", Level.OK, "rotation not configured yet"))
            return
        enabled = "enabled" if details.rotation_enabled else "configured but disabled"
        message = f"rotation {enabled}: {details.function_arn} ({schedule_text(details)})"
        qualifier = function_qualifier(details.function_arn)
        if qualifier is not None and (expected or not self.function_arn):
            add(
                Finding(
                    "rotation.config",
                    Level.FAIL,
                    f"{message}; a qualified function ARN (':{qualifier}'): rotator's role allows the "
                    "function's calls only where AllowRotationLambdaArn is the unqualified ARN, so they are denied",
                    "attach it again with the function's unqualified ARN (rotator attach --function-arn)",
                )
            )
        elif self.function_arn and details.function_arn != self.function_arn:
            if expected:
                add(
                    Finding(
                        "rotation.config",
                        Level.FAIL,
                        f"{message}; not this stack's function {self.function_arn}",
                        "attach it to this function again (RotatedSecretArns, or rotator attach), "
                        "or take it off the stack's list",
                    )
                )
            else:
                add(Finding("rotation.config", Level.WARN, message, "attach replaces it with the new function"))
        elif expected and not details.rotation_enabled:
            add(
                Finding(
                    "rotation.config",
                    Level.FAIL,
                    f"{message}: no rotation will run",
                    "turn it on again: redeploy the stack, or rotator attach",
                )
            )
        else:
            add(Finding("rotation.config", Level.OK, message))

    def _schedule(self, details: SecretDescription, stuck: PendingVersion | None, add: Add) -> None:
        """Did the last rotation complete, and when is the next one due (rotation is on)?"""
        state = schedule_state(details, schedule.utcnow())
        last = format_date(details.last_rotated) if details.last_rotated else None
        if state.overdue_since is not None:
            done = f"the last one completed {last}" if last else "none has completed since rotation was turned on"
            add(
                Finding(
                    "rotation.last",
                    Level.FAIL,
                    f"the rotation due by {format_date(state.overdue_since)} has not completed ({done})",
                    "read why in the function's log group (its 'step failed' lines for this secret), "
                    f"fix the cause (rotator check {details.name} from the VPC), then rotate: "
                    f"aws secretsmanager rotate-secret --secret-id {details.name}",
                )
            )
        elif last:
            add(Finding("rotation.last", Level.OK, f"last rotation completed {last}"))
        elif state.due is not None:
            add(
                Finding(
                    "rotation.last",
                    Level.OK,
                    f"no rotation has completed yet; the first is due by {format_date(state.due)}",
                )
            )
        else:
            add(
                Finding(
                    "rotation.last",
                    Level.WARN,
                    "no rotation has completed yet, and Secrets Manager names no next rotation date",
                    f"rotator status {details.name}; if the schedule is set, start one: "
                    f"aws secretsmanager rotate-secret --secret-id {details.name}",
                )
            )
        due = f"due by {format_date(state.due)}" if state.due else "date unknown"
        upcoming = f"next rotation {due} ({schedule_text(details)})"
        if stuck is None:
            add(Finding("rotation.next", Level.OK, upcoming))
            return
        blocked = "blocked" if stuck.stale else "blocked unless the rotation in progress finishes"
        add(
            Finding(
                "rotation.next",
                Level.WARN,
                f"{upcoming}: {blocked}: RotateSecret refuses to start while AWSPENDING stays on "
                f"version {stuck.version_id}",
                "see rotation.state",
            )
        )


def _stuck_rotation(details: SecretDescription, stuck: PendingVersion) -> Finding:
    """A stale pending version, and which step the labels say it stopped at."""
    message = f"stuck rotation: {stuck.describe()}; RotateSecret will refuse to start another"
    if details.has_stage(stuck.version_id, TESTED):
        return Finding(
            "rotation.state",
            Level.FAIL,
            f"{message}. It passed testSecret (ROTATOR_TESTED) but finishSecret never promoted it",
            f"read why finishSecret failed (the function's logs), then finish it from the VPC: rotator rotate "
            f"{details.name} --local --token {stuck.version_id}; or clear it: rotator fix {details.name}",
        )
    return Finding(
        "rotation.state",
        Level.FAIL,
        f"{message}. It never passed testSecret: createSecret, setSecret or testSecret failed",
        f"find why it failed (the function's logs), then: rotator fix {details.name}",
    )
