"""What the function emitted, parsed for assertions: JSON log lines and CloudWatch
EMF records from stdout, X-Ray segments from a capturing emitter, and the check
that none of it (nor the idempotency table) holds a credential."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Emitted:
    """Everything one stretch of stdout held, split the way CloudWatch would see it."""

    text: str
    logs: list[dict[str, Any]] = field(default_factory=list)
    emf: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def parse(cls, text: str) -> Emitted:
        emitted = cls(text)
        for line in text.splitlines():
            try:
                record = json.loads(line)
            except ValueError:
                continue
            if not isinstance(record, dict):
                continue
            if "_aws" in record:
                emitted.emf.append(record)
            elif "level" in record and "message" in record:
                emitted.logs.append(record)
        return emitted

    def metric(self, name: str, **dimensions: str) -> list[float]:
        """Every value of metric ``name`` in EMF records whose dimension set is exactly
        ``dimensions`` plus ``service``."""
        wanted = {*dimensions, "service"}
        values: list[float] = []
        for record in self.emf:
            for directive in record["_aws"]["CloudWatchMetrics"]:
                if name not in {metric["Name"] for metric in directive["Metrics"]}:
                    continue
                for dimension_set in directive["Dimensions"]:
                    if set(dimension_set) == wanted and all(record[k] == v for k, v in dimensions.items()):
                        values.extend(record[name] if isinstance(record[name], list) else [record[name]])
        return values

    def metric_names(self) -> set[str]:
        return {
            metric["Name"]
            for record in self.emf
            for directive in record["_aws"]["CloudWatchMetrics"]
            for metric in directive["Metrics"]
        }

    def dimension_names(self) -> set[str]:
        return {
            name
            for record in self.emf
            for directive in record["_aws"]["CloudWatchMetrics"]
            for dimension_set in directive["Dimensions"]
            for name in dimension_set
        }

    def messages(self, level: str | None = None) -> list[dict[str, Any]]:
        return [log for log in self.logs if level is None or log["level"] == level]


class SegmentCapture:
    """An X-Ray emitter that keeps what it would send to the daemon, serialized."""

    def __init__(self, recorder: Any) -> None:
        self.documents: list[str] = []
        self._recorder = recorder
        self._open = False

    def open(self, name: str) -> None:
        self._recorder.begin_segment(name, sampling=1)
        self._open = True

    def close(self) -> None:
        """End the segment: it is serialized and 'sent' here with what it still holds."""
        if self._open:
            self._open = False
            self._recorder.end_segment()

    def send_entity(self, entity: Any) -> None:
        self.documents.append(entity.serialize())

    def set_daemon_address(self, address: str) -> None:
        pass

    def entities(self) -> list[dict[str, Any]]:
        """Every segment and subsegment sent, flattened."""
        found: list[dict[str, Any]] = []

        def walk(entity: dict[str, Any]) -> None:
            found.append(entity)
            for child in entity.get("subsegments", []):
                walk(child)

        for document in self.documents:
            walk(json.loads(document))
        return found

    def names(self) -> set[str]:
        return {str(entity["name"]) for entity in self.entities()}


def leaked(secrets: Mapping[str, str], *places: str) -> list[str]:
    """The labels of the secrets found in any of ``places`` (never the values, so a
    failing assertion does not print a credential). A value is also looked for as
    it appears inside JSON (escaped)."""
    text = "\n".join(places)
    found = []
    for label, value in secrets.items():
        assert value, f"{label}: an empty string cannot be checked for"
        if value in text or json.dumps(value)[1:-1] in text:
            found.append(label)
    return found


def secret_strings(client: Any, arns: Iterable[str]) -> dict[str, str]:
    """Every SecretString and password any version of ``arns`` holds, labelled."""
    found: dict[str, str] = {}
    for arn in arns:
        versions = client.list_secret_version_ids(SecretId=arn, IncludeDeprecated=True)["Versions"]
        for version in versions:
            try:
                value = client.get_secret_value(SecretId=arn, VersionId=version["VersionId"])["SecretString"]
            except Exception:  # a version without a value holds nothing
                continue
            name = arn.rsplit(":", 1)[-1]
            found[f"SecretString of {name} {version['VersionId']}"] = value
            password = json.loads(value).get("password")
            if password:
                found[f"password of {name} {version['VersionId']}"] = password
    return found


class RunSpy:
    """Stands in for ``Rotation.run`` (patched on the class, so it does not matter when
    the handler wires its container): records each step that really ran behind the
    idempotency layer, and can hold a step inside until released so a concurrent
    duplicate can be staged deterministically."""

    def __init__(self, run: Callable[[Any, Any], Any]) -> None:
        self._run = run
        self.calls: list[str] = []
        self.entered = threading.Event()
        self.hold: threading.Event | None = None

    def hold_next(self) -> threading.Event:
        """Hold the next step inside until the returned event is set."""
        self.entered.clear()
        self.hold = threading.Event()
        return self.hold

    def method(self) -> Callable[[Any, Any], Any]:
        def run(rotation: Any, request: Any) -> Any:
            return self(rotation, request)

        return run

    def __call__(self, rotation: Any, request: Any) -> Any:
        self.calls.append(str(request.step))
        self.entered.set()
        if self.hold is not None:
            assert self.hold.wait(30), "the held step was never released"
        return self._run(rotation, request)
