"""Driving the function as Secrets Manager does, counted: the part the rotation,
bulk and cold sections share (and ``make soak``'s container handling)."""

from __future__ import annotations

import contextlib
import io
import logging
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from bench.common import REGION, STEPS, TABLE, spread
from bench.counters import STEP_SQL, Probe, summarize


@contextlib.contextmanager
def function_output(buffer: io.StringIO | None = None) -> Iterator[io.StringIO]:
    """Send the function's JSON logs and EMF metrics to ``buffer`` instead of the
    terminal (they still cost what they cost)."""
    buffer = buffer if buffer is not None else io.StringIO()
    handlers = [h for h in logging.getLogger("rotator").handlers if isinstance(h, logging.StreamHandler)]
    previous = [h.setStream(buffer) for h in handlers]
    try:
        with contextlib.redirect_stdout(buffer):
            yield buffer
    finally:
        for handler, stream in zip(handlers, previous, strict=True):
            if stream is not None:
                handler.setStream(stream)


def fresh_container() -> None:
    """Forget the wiring, as a new Lambda container would not have it."""
    from rotator import handler as handler_module

    handler_module._container.cache_clear()


def product_stats() -> Counter[str]:
    """rotator's own database counters, if the container has been built."""
    from rotator import handler as handler_module

    if handler_module._container.cache_info().currsize == 0:
        return Counter()
    return Counter(handler_module._container().database.stats)


def create_idempotency_table(endpoint_url: str | None = None) -> None:
    import boto3

    dynamodb = boto3.client("dynamodb", region_name=REGION, endpoint_url=endpoint_url)
    dynamodb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )


@dataclass
class Rotation:
    step_ms: dict[str, float]
    counts: Counter[str]
    stats: Counter[str]
    outcomes: dict[str, str]

    @property
    def total_ms(self) -> float:
        return sum(self.step_ms.values())


def rotate(client: Any, arn: str, probe: Probe) -> Rotation:
    """Stage a rotation (not counted) and run its four steps through the handler (counted)."""
    from rotator import handler as handler_module
    from tests.support.aws import begin_rotation, event
    from tests.support.lambda_context import FakeLambdaContext

    token = begin_rotation(client, arn)
    before, stats_before = probe.snapshot(), product_stats()
    step_ms: dict[str, float] = {}
    outcomes: dict[str, str] = {}
    by_step: Counter[str] = Counter()
    for step in STEPS:
        step_before = probe.snapshot()
        with probe.recording():
            started = time.perf_counter()
            result = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
            step_ms[step] = (time.perf_counter() - started) * 1000
        outcomes[step] = str(result.get("outcome"))
        # Each step's statements by verb, kept beside the totals (summarize: "sql_by_step").
        for key, value in probe.since(step_before).items():
            if key.startswith("sql:"):
                by_step[f"{STEP_SQL}{step}:{key[4:]}"] += value
    stats = product_stats()
    stats.subtract(stats_before)
    counts = probe.since(before)
    counts.update(by_step)
    return Rotation(step_ms, counts, Counter({k: v for k, v in stats.items() if v}), outcomes)


def duplicate_deliveries(client: Any, arn: str, probe: Probe) -> dict[str, Any]:
    """One more rotation with every step delivered twice: what a duplicate costs
    when the idempotency table answers it (counted: the second deliveries only)."""
    from rotator import handler as handler_module
    from tests.support.aws import begin_rotation, event
    from tests.support.lambda_context import FakeLambdaContext

    token = begin_rotation(client, arn)
    counted: Counter[str] = Counter()
    outcomes: dict[str, str] = {}
    for step in STEPS:
        first = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
        before = probe.snapshot()
        with probe.recording():
            again = handler_module.lambda_handler(event(arn, token, step), FakeLambdaContext())
        counted.update(probe.since(before))
        outcomes[step] = "same result" if again == first else f"different: {again.get('outcome')}"
    mean = summarize(Counter({k: v / len(STEPS) for k, v in counted.items()}))  # type: ignore[misc]
    return {"per_delivery": mean, "outcomes": outcomes}


def per_rotation(rotations: Sequence[Rotation]) -> dict[str, Any]:
    """Counts of a group of rotations: the mean per rotation, and whether every rotation did the same."""
    if not rotations:
        return {}
    summaries = [summarize(r.counts) for r in rotations]
    totals: Counter[str] = Counter()
    for r in rotations:
        totals.update(r.counts)
    mean = summarize(Counter({k: v / len(rotations) for k, v in totals.items()}))  # type: ignore[misc]
    return {
        "rotations": len(rotations),
        "identical": all(s == summaries[0] for s in summaries),
        "mean": mean,
        "min_secretsmanager_calls": min(s["secretsmanager_calls"] for s in summaries),
        "max_secretsmanager_calls": max(s["secretsmanager_calls"] for s in summaries),
        "max_db_connections_attempted": max(s["db_connections_attempted"] for s in summaries),
    }


def timings(rotations: Sequence[Rotation]) -> dict[str, Any]:
    return {
        "rotation_ms": spread([r.total_ms for r in rotations]),
        "step_ms": {step: spread([r.step_ms[step] for r in rotations]) for step in STEPS},
    }
