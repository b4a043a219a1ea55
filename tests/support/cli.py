"""Running the ``rotator`` CLI in-process, and a moto server for ``--endpoint-url``.

:class:`Cli` calls :func:`rotator.cli.main` with captured stdout/stderr and returns
the exit code and both streams, so a test can assert on what an operator sees (and
on what never appears in it: passwords).
"""

from __future__ import annotations

import io
import json
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
from moto.server import ThreadedMotoServer

from rotator.cli import main


@dataclass(frozen=True)
class CliRun:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err

    def json(self) -> Any:
        return json.loads(self.out)

    def leaks(self, secrets: Iterable[str]) -> list[str]:
        """The secrets (passwords) that appear anywhere in the output."""
        return [secret for secret in secrets if secret and secret in self.text]


class _Tty(io.StringIO):
    def isatty(self) -> bool:
        return True


class Cli:
    def __init__(self, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
        self._capsys = capsys
        self._monkeypatch = monkeypatch
        self.base_args: list[str] = []

    def __call__(self, *argv: str, stdin: str | None = None, tty: bool = False) -> CliRun:
        """Run ``rotator *argv``; ``stdin`` is what the operator types (``tty``: at a terminal)."""
        self._capsys.readouterr()
        if stdin is not None or tty:
            stream = _Tty(stdin or "") if tty else io.StringIO(stdin or "")
            self._monkeypatch.setattr("sys.stdin", stream)
        code = main([*self.base_args, *argv])
        captured = self._capsys.readouterr()
        return CliRun(code, captured.out, captured.err)


class MotoServer:
    """moto's server on 127.0.0.1 (a free port), reset between tests."""

    def __init__(self) -> None:
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)

    def start(self) -> None:
        self._server.start()

    def stop(self) -> None:
        self._server.stop()

    @property
    def url(self) -> str:
        host, port = self._server.get_host_and_port()
        return f"http://{host}:{port}"

    def reset(self) -> None:
        request = urllib.request.Request(f"{self.url}/moto-api/reset", method="POST")
        with urllib.request.urlopen(request, timeout=10):
            pass


class _Body:
    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


@dataclass
class AwsFault:
    """Makes every Secrets Manager call of the CLI answer with an AWS error, through
    botocore's real retry machinery (the answer replaces the HTTP response, so
    throttling is retried exactly as it would be in production). ``attempts``
    counts the HTTP requests; ``sleeps`` the back-off delays botocore chose."""

    code: str
    status: int = 400
    operation: str = "*"
    times: int | None = None  # answer this many requests, then let the real ones through
    attempts: int = 0
    sleeps: list[float] = field(default_factory=list)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> AwsFault:
        from botocore import endpoint
        from botocore.awsrequest import AWSResponse

        from rotator.cli import context

        make_session = context.make_session

        def answer(request: Any, **_: Any) -> AWSResponse | None:
            if self.times is not None and self.attempts >= self.times:
                return None
            self.attempts += 1
            body = json.dumps({"__type": self.code, "message": f"{self.code} (injected by the test)"})
            return AWSResponse(
                request.url, self.status, {"Content-Type": "application/x-amz-json-1.1"}, _Body(body.encode())
            )

        def faulty(profile: str | None, region: str | None) -> Any:
            session = make_session(profile, region)
            session.events.register(f"before-send.secrets-manager.{self.operation}", answer)
            return session

        monkeypatch.setattr(context, "make_session", faulty)
        monkeypatch.setattr(endpoint.time, "sleep", self.sleeps.append)
        return self


def moto_rotation_function(monkeypatch: pytest.MonkeyPatch, name: str = "rotator") -> str:
    """A rotation function that exists in moto's Lambda (inside an active mock): moto
    records RotateSecret's invocations of it and runs nothing (no Docker)."""
    import io
    import zipfile

    import boto3
    from moto.core.models import default_user_config

    monkeypatch.setitem(default_user_config["lambda"], "use_docker", False)
    iam = boto3.client("iam", region_name="us-east-1")
    role = iam.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps({"Version": "2012-10-17"}))
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("rotator/handler.py", "def lambda_handler(event, context):\n    return {}\n")
    function = boto3.client("lambda", region_name="us-east-1").create_function(
        FunctionName=name,
        Runtime="python3.13",
        Role=role["Role"]["Arn"],
        Handler="rotator.handler.lambda_handler",
        Code={"ZipFile": code.getvalue()},
    )
    return str(function["FunctionArn"])
