"""What the CLI prints: findings, progress, JSON documents and one-line errors.

Everything goes through :class:`Output`, which scrubs every password the CLI has
seen (the store registers each secret value it reads or writes) from every line,
as a last line of defence behind messages that are built without them.
"""

from __future__ import annotations

import enum
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, TextIO

from rotator.readiness import MASK, Finding, Level

_MIN_SECRET_LENGTH = 4  # shorter strings would mask ordinary words


class ExitCode(enum.IntEnum):
    """What the process exit status means (documented in docs/operations.md)."""

    OK = 0
    PROBLEMS = 1  # a check failed, a secret was not attached, a stale label, a failed step
    USAGE = 2  # bad arguments or configuration (argparse uses 2 too)
    NOT_FOUND = 3  # a secret does not exist (or is not visible to the caller)
    DENIED = 4  # access denied, missing or expired credentials
    RETRY = 5  # throttled, service unavailable, endpoint unreachable: try again later
    INTERNAL = 70  # a bug in rotator: rerun with --debug and report it
    INTERRUPTED = 130


def worst(codes: Iterable[ExitCode]) -> ExitCode:
    """The exit code of a run over many secrets: the highest per-secret code."""
    return max(codes, default=ExitCode.OK)


@dataclass
class Redactor:
    secrets: set[str] = field(default_factory=set)

    def add(self, value: str | None) -> None:
        if value and len(value) >= _MIN_SECRET_LENGTH:
            self.secrets.add(value)

    def add_secret_string(self, secret_string: str | None) -> None:
        """Remember the password of a secret value (a JSON object), if it has one."""
        if not secret_string:
            return
        try:
            value = json.loads(secret_string)
        except ValueError:
            # Not JSON: the whole string may be the credential.
            self.add(secret_string)
            return
        if isinstance(value, dict):
            for key in ("password", "masterpassword"):
                candidate = value.get(key)
                if isinstance(candidate, str):
                    self.add(candidate)

    def scrub(self, text: str) -> str:
        for secret in sorted(self.secrets, key=len, reverse=True):
            if secret in text:
                text = text.replace(secret, MASK)
        return text


class Output:
    def __init__(
        self,
        *,
        json_mode: bool = False,
        quiet: bool = False,
        stdout: TextIO | None = None,
        stderr: TextIO | None = None,
        redactor: Redactor | None = None,
    ) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self._stdout = stdout
        self._stderr = stderr
        self.redactor = redactor or Redactor()

    @property
    def stdout(self) -> TextIO:
        return self._stdout or sys.stdout

    @property
    def stderr(self) -> TextIO:
        return self._stderr or sys.stderr

    def line(self, text: str = "") -> None:
        """Human output (stdout); silent in --json mode."""
        if not self.json_mode:
            self._write(self.stdout, text)

    def progress(self, text: str) -> None:
        """Progress of a long run (stderr, so stdout stays parseable); silent with --quiet."""
        if not self.quiet:
            self._write(self.stderr, text)

    def error(self, text: str) -> None:
        self._write(self.stderr, f"rotator: error: {text}")

    def warning(self, text: str) -> None:
        self._write(self.stderr, f"rotator: warning: {text}")

    def document(self, value: Any) -> None:
        """The one JSON document of a --json run (stdout)."""
        self._write(self.stdout, json.dumps(value, indent=2, sort_keys=False, default=str))

    def findings(self, findings: list[Finding], indent: str = "  ") -> None:
        width = max((len(finding.check) for finding in findings), default=0)
        for finding in findings:
            self.line(f"{indent}{finding.level.value:<5} {finding.check:<{width}}  {finding.message}")
            if finding.action and finding.level in (Level.WARN, Level.FAIL):
                self.line(f"{indent}{'':<5} {'':<{width}}  -> {finding.action}")

    def _write(self, stream: TextIO, text: str) -> None:
        stream.write(self.redactor.scrub(text) + "\n")
        stream.flush()
