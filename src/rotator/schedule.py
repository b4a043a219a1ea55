"""Where a secret's rotation stands: labels, the rotation window, a stuck pending version.

A version labelled AWSPENDING that is not also AWSCURRENT means a rotation has
started and not finished. Secrets Manager retries a failed rotation during the
rotation window; once the window has passed, the pending label only blocks the
next RotateSecret ("a previous rotation is still in progress"). Such a label is
*stale* and ``rotator fix`` may remove it.

A rotation that never started leaves no label at all; the dates say it instead.
Secrets Manager documents ``NextRotationDate`` as the latest date the next
rotation will occur, left in the past when rotation is unsuccessful, and
``LastRotatedDate`` as the last completed rotation: :func:`schedule_state`
reads both.
"""

from __future__ import annotations

import datetime
import re
from dataclasses import dataclass
from typing import Any

from rotator.ports import CURRENT, PENDING, SecretDescription, VersionInfo

# Without a Duration, Secrets Manager closes the window after one hour for an
# hourly schedule and at the end of the UTC day otherwise: 24 hours is never shorter.
DEFAULT_WINDOW = datetime.timedelta(hours=24)
HOURLY_WINDOW = datetime.timedelta(hours=1)

# How late a rotation may complete before it counts as overdue, beyond its window:
# LastRotatedDate and NextRotationDate may be recorded coarser than the rotation
# itself, and a rotation retried late in its window still completes. A check that
# runs daily loses nothing by waiting one more day.
OVERDUE_SLACK = datetime.timedelta(days=1)

_DURATION = re.compile(r"^(\d{1,2})h$")
_HOURLY = re.compile(r"^rate\(\s*\d+\s+hours?\s*\)$")
_RATE = re.compile(r"^rate\(\s*(\d+)\s+(hour|hours|day|days)\s*\)$")


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def rotation_window(rules: dict[str, Any]) -> datetime.timedelta:
    duration = rules.get("Duration")
    if isinstance(duration, str) and (match := _DURATION.match(duration.strip())):
        return datetime.timedelta(hours=int(match.group(1)))
    expression = rules.get("ScheduleExpression")
    if isinstance(expression, str) and _HOURLY.match(expression.strip()):
        return HOURLY_WINDOW
    return DEFAULT_WINDOW


def rotation_interval(rules: dict[str, Any]) -> datetime.timedelta | None:
    """The fixed interval of a ``rate()`` or ``AutomaticallyAfterDays`` schedule; None for
    ``cron()``, whose next date only Secrets Manager computes (``NextRotationDate``)."""
    expression = rules.get("ScheduleExpression")
    if isinstance(expression, str) and expression.strip():
        match = _RATE.match(expression.strip())
        if not match:
            return None
        amount, unit = int(match.group(1)), match.group(2)
        return datetime.timedelta(hours=amount) if unit.startswith("hour") else datetime.timedelta(days=amount)
    days = rules.get("AutomaticallyAfterDays")
    if isinstance(days, int) and not isinstance(days, bool) and days > 0:
        return datetime.timedelta(days=days)
    return None


@dataclass(frozen=True)
class ScheduleState:
    """When the next rotation is due, and since when one is overdue."""

    due: datetime.datetime | None  # NextRotationDate, else the last rotation plus a fixed interval
    overdue_since: datetime.datetime | None  # a due date whose rotation has not completed, long past its window


def schedule_state(details: SecretDescription, now: datetime.datetime) -> ScheduleState:
    """Read the dates of a secret whose rotation is on: when is the next rotation due,
    and has a due rotation failed to complete (its window and :data:`OVERDUE_SLACK` gone by)?"""
    interval = rotation_interval(details.rules)
    by_interval = details.last_rotated + interval if details.last_rotated and interval else None
    due = details.next_rotation or by_interval
    grace = rotation_window(details.rules) + OVERDUE_SLACK
    missed = [date for date in (details.next_rotation, by_interval) if date is not None and now > date + grace]
    return ScheduleState(due, min(missed) if missed else None)


@dataclass(frozen=True)
class PendingVersion:
    version_id: str
    created: datetime.datetime | None
    age: datetime.timedelta | None
    window: datetime.timedelta
    stale: bool

    def describe(self) -> str:
        age = f"created {format_age(self.age)} ago" if self.age is not None else "creation date unknown"
        state = "stale: older than" if self.stale else "within"
        return f"AWSPENDING on version {self.version_id} ({age}; {state} the {format_age(self.window)} window)"


def pending_version(
    details: SecretDescription,
    versions: list[VersionInfo],
    now: datetime.datetime,
    stale_after: datetime.timedelta | None = None,
) -> PendingVersion | None:
    """The unfinished rotation's version, or None when no rotation is in progress."""
    pending = details.version_with(PENDING)
    if pending is None or pending == details.version_with(CURRENT):
        return None
    created = next((version.created for version in versions if version.version_id == pending), None)
    window = stale_after if stale_after is not None else rotation_window(details.rules)
    age = now - created if created else None
    return PendingVersion(pending, created, age, window, stale=age is not None and age > window)


def format_age(delta: datetime.timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def format_date(value: datetime.datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M UTC") if value else "-"


def schedule_text(details: SecretDescription) -> str:
    rules = details.rules
    parts = []
    if rules.get("ScheduleExpression"):
        parts.append(str(rules["ScheduleExpression"]))
    elif rules.get("AutomaticallyAfterDays"):
        parts.append(f"every {rules['AutomaticallyAfterDays']} days")
    if rules.get("Duration"):
        parts.append(f"window {rules['Duration']}")
    return ", ".join(parts) or "no schedule"
