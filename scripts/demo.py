"""make demo: two real rotations on this machine, no AWS account needed.

Secrets Manager and DynamoDB (idempotency) are moto, in-process; the database is a
private MariaDB (or, with ``--db mysql``, MySQL from the Debian sid chroot, or the
server ROTATOR_MYSQL_DSN names; with ``--db postgresql``, Debian's PostgreSQL 15 —
``postgresql18``: Debian sid's 18 in its chroot) started for the demo with its own CA,
so every login verifies the server certificate. Each step goes through
``rotator.handler.lambda_handler`` exactly as Secrets Manager calls it: the same
token through the four steps.

    python scripts/demo.py [--db mariadb|mysql|postgresql|postgresql18] [--verbose] [--no-idempotency]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "src"))

from tests.support.env import LOCAL_ENV  # noqa: E402 - after sys.path points at the repository

DEMO_ENV = {**LOCAL_ENV, "IDEMPOTENCY_TABLE": "rotator-demo-idempotency"}
STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")
# --db -> the server the suite starts ("postgresql": the host's own PostgreSQL, 15).
SERVERS = {"mariadb": "mariadb", "mysql": "mysql", "postgresql": "postgresql15", "postgresql18": "postgresql18"}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--db", choices=tuple(SERVERS), default="mariadb", help="the database server family")
    parser.add_argument("--verbose", action="store_true", help="show the function's JSON logs and EMF metrics")
    parser.add_argument("--no-idempotency", action="store_true", help="run without the DynamoDB idempotency layer")
    args = parser.parse_args()

    os.environ.update(DEMO_ENV)
    if args.no_idempotency:
        os.environ["POWERTOOLS_IDEMPOTENCY_DISABLED"] = "true"
    if not args.verbose:
        os.environ["POWERTOOLS_LOG_LEVEL"] = "WARNING"
        os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"

    import boto3
    from moto import mock_aws

    from tests.support.aws import begin_rotation, create_idempotency_table, event, stages
    from tests.support.families import ensure_installed, session_server
    from tests.support.lambda_context import FakeLambdaContext
    from tests.support.world import make_world, reset_server

    name = SERVERS[args.db]
    ensure_installed(name)
    with tempfile.TemporaryDirectory(prefix="rotator-demo-") as tmp, mock_aws():
        print(f"starting a private {name} server with TLS (own CA, certificate for 127.0.0.1) ...")
        with session_server(name, Path(tmp) / name) as server:
            os.environ["ROTATOR_CA_BUNDLE"] = str(server.pki.ca_file)
            client = boto3.client("secretsmanager", region_name="us-east-1")
            if not args.no_idempotency:
                dynamodb = boto3.client("dynamodb", region_name="us-east-1")
                create_idempotency_table(dynamodb, DEMO_ENV["IDEMPOTENCY_TABLE"])
            world = make_world(server, client)
            postgres = server.family == "postgresql"
            version = server.version if postgres else server.sql("SELECT VERSION()")[0][0]
            print(f"  {name} {version} on {server.host}:{server.port}")
            print(f"  admin secret  {world.admin_arn}")
            print(f"  app secret    {world.app_arn}  (masterarn -> admin secret)")
            if postgres:
                print("  app user 'app' runs as owner role 'app_owner' (privileges on appdb, schema app, app.items)")
            else:
                print(f"  app user 'app' has: {'; '.join(world.grants('app'))}")
            print(f"  idempotency   {'off' if args.no_idempotency else 'on (moto DynamoDB)'}")

            from rotator.handler import lambda_handler

            for number in (1, 2):
                if postgres:  # the current user creates a table; after the rotation the other one uses it
                    _run(world, world.app_secret(), f"CREATE TABLE app.made_in_{number} (id int)")
                token = begin_rotation(client, world.app_arn)
                print(f"\nrotation {number}  token {token}")
                for step in STEPS:
                    started = time.perf_counter()
                    step_event = event(world.app_arn, token, step)
                    result = _quiet(args.verbose, lambda_handler, step_event, FakeLambdaContext())
                    elapsed = (time.perf_counter() - started) * 1000
                    print(f"  {step:<13} {result['outcome']:<16} {elapsed:7.1f} ms")
                labels = stages(client, world.app_arn)
                current = world.app_secret()
                previous = world.app_secret("AWSPREVIOUS")
                print(f"  AWSCURRENT  -> user '{current['username']}'   (version {_version(labels, 'AWSCURRENT')})")
                print(f"  AWSPREVIOUS -> user '{previous['username']}'   (version {_version(labels, 'AWSPREVIOUS')})")

            print("\nfinal check: both credentials log in over verified TLS and use their grants")
            ok = True
            for stage in ("AWSCURRENT", "AWSPREVIOUS"):
                value = world.app_secret(stage)
                try:
                    world.can_use_grants(value)
                    used = "INSERT app.items" if postgres else "INSERT appdb.items, SELECT reports.summary"
                    print(f"  {stage:<11} '{value['username']}': login, {used}  ok")
                except Exception as exc:  # the demo reports a failure, it does not crash
                    ok = False
                    print(f"  {stage:<11} '{value['username']}': FAILED ({type(exc).__name__})")
            if postgres:
                same = _ownership_check(world)
            else:
                same = world.grants("app") == world.grants("app_clone")
                print(f"  'app' and 'app_clone' hold the same privileges: {'yes' if same else 'NO'}")
            ok = ok and same
            if not server.controllable:  # a server of your own (ROTATOR_MYSQL_DSN): leave it as it was
                reset_server(server)
    print("\ndemo " + ("succeeded" if ok else "FAILED"))
    return 0 if ok else 1


def _run(world: Any, value: dict[str, Any], statement: str) -> None:
    session = world.connect(value)
    try:
        session.cursor().execute(statement)
    finally:
        session.close()


def _ownership_check(world: Any) -> bool:
    """PostgreSQL: each user alters the tables the users created between rotations (the
    objects belong to the owner role, so neither gets "permission denied")."""
    ok = True
    for stage in ("AWSCURRENT", "AWSPREVIOUS"):
        value = world.app_secret(stage)
        for number in (1, 2):
            try:
                _run(world, value, f"ALTER TABLE app.made_in_{number} ADD COLUMN by_{value['username']} int")
            except Exception as exc:  # the demo reports a failure, it does not crash
                ok = False
                print(f"  '{value['username']}' cannot alter app.made_in_{number} ({type(exc).__name__})")
    if ok:
        print("  both users alter the tables either created between rotations (owned by 'app_owner')")
    return ok


def _quiet(verbose: bool, function: Any, *args: Any) -> Any:
    if verbose:
        return function(*args)
    with contextlib.redirect_stdout(io.StringIO()):
        return function(*args)


def _version(labels: dict[str, list[str]], stage: str) -> str:
    return next((v[:8] for v, s in labels.items() if stage in s), "-")


if __name__ == "__main__":
    raise SystemExit(main())
