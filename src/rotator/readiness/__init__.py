"""Will the next rotation of a secret work? Read-only answers, one finding per question.

The rules a rotation would discover the hard way, asked in advance: is the value
usable, is the admin secret there, does the current user log in with verified
TLS, can the admin create the twin and give it every privilege and role the
application user has, does the twin's name fit, is a rotation stuck, did the last
one complete, when is the next one due, has someone changed the twin behind
rotator's back. Nothing is written: the admin only reads the catalogue.

By job: the findings model (:mod:`rotator.findings`), Secrets Manager's side
(:mod:`.store`), the secret values (:mod:`rotator.secret_checks`), the database and its
advice (:mod:`rotator.database_checks`; which checks apply is each strategy's ``check``, and what the
rotation needs is each strategy's pre-flight, :mod:`rotator.preflight`), one secret
(:mod:`.check`) and the scheduled sweep over many (:mod:`.sweep`).

Used by ``rotator check`` / ``attach`` (which print the findings) and by the
scheduled readiness check (the canary function, ``rotator.canary``).
"""

from rotator.findings import HISTORY_CHECKS, MASK, Finding, Level, SecretReport
from rotator.readiness.check import ReadinessCheck, same_secret
from rotator.readiness.sweep import DEFAULT_MARGIN_SECONDS, ReadinessSweep, SweepResult

__all__ = [
    "DEFAULT_MARGIN_SECONDS",
    "HISTORY_CHECKS",
    "MASK",
    "Finding",
    "Level",
    "ReadinessCheck",
    "ReadinessSweep",
    "SecretReport",
    "SweepResult",
    "same_secret",
]
