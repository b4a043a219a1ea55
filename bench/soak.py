"""make soak: rotations back to back through the real handler while an application works.

    python -m bench.soak                       # both modes, 100 rotations each, 8 workers
    python -m bench.soak --mode alternating --rotations 20 --workers 2
    python -m bench.soak --server mysql --mode single-user --refresh per-rotation

Single user on MySQL runs with dual passwords (the user holds APPLICATION_PASSWORD_ADMIN):
the old password stays the secondary one, so, as with alternating users, no
transaction may fail. --refresh per-rotation: clients read AWSCURRENT once per
rotation and never again when a login is refused.

Each mode gets a private database server (--server; own datadir, port and CA;
verified TLS) and an in-process moto Secrets Manager; both are thrown away at the end. The engine is
tests/support/soak.py. A table goes to stdout, the full report as JSON to
--json (default bench/results/soak.json). The function's own output (logs,
metrics) is captured, scanned for every password the secrets ever held and
written to bench/results/soak-function-output.log.

Exit status: 1 when a soak without a window (alternating users; single user with
dual passwords) saw a failed transaction, any
rotation did not complete, the final AWSCURRENT does not work, or a password
appeared in any output.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from bench.driver import fresh_container, function_output
from bench.servers import SERVER_NAMES, ServerKind, server_kind
from tests.support.env import LOCAL_ENV

FUNCTION_ENV = {
    **LOCAL_ENV,
    "POWERTOOLS_IDEMPOTENCY_DISABLED": "true",
    "DB_CONNECT_TIMEOUT": "3",
    "DB_READ_TIMEOUT": "10",
}
RESULTS = Path("bench/results")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--mode", choices=("alternating", "single-user", "both"), default="both")
    parser.add_argument("--server", choices=SERVER_NAMES, default="mariadb", help="the private database server")
    parser.add_argument("--rotations", type=int, default=100)
    parser.add_argument("--workers", type=int, default=8)
    parser.add_argument("--recycle", type=int, default=20, help="transactions per connection")
    parser.add_argument("--baseline", type=float, default=3.0, help="seconds of load before the first rotation")
    parser.add_argument("--after", type=float, default=1.0, help="seconds of load after the last rotation")
    parser.add_argument("--gap", type=float, default=0.0, help="seconds between rotations")
    parser.add_argument("--max-seconds", type=float, default=600.0, help="per mode; no rotation starts after it")
    parser.add_argument("--reread-attempts", type=int, default=1, help="AWSCURRENT re-reads after a refused login")
    parser.add_argument("--reread-pause", type=float, default=0.0, help="seconds before the 2nd and later re-reads")
    parser.add_argument(
        "--pending-fallback", action="store_true", help="after the re-reads fail, try AWSPENDING (single user)"
    )
    parser.add_argument(
        "--dual-passwords",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="single user on MySQL: give the user APPLICATION_PASSWORD_ADMIN (keeps the old password)",
    )
    parser.add_argument(
        "--refresh",
        choices=("on-refusal", "per-rotation"),
        default="on-refusal",
        help="when clients read AWSCURRENT again: after a refused login, or once per rotation only",
    )
    parser.add_argument("--json", type=Path, default=RESULTS / "soak.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    for key in ("AWS_PROFILE", "AWS_ENDPOINT_URL", "SECRETS_MANAGER_ENDPOINT", "IDEMPOTENCY_TABLE"):
        os.environ.pop(key, None)
    os.environ.update(FUNCTION_ENV)

    from tests.support.soak import LoadConfig, SoakConfig, format_report, loopback_only

    kind = server_kind(args.server)
    config = SoakConfig(
        rotations=args.rotations,
        load=LoadConfig(
            workers=args.workers,
            recycle_every=args.recycle,
            reread_attempts=args.reread_attempts,
            reread_pause=args.reread_pause,
            pending_fallback=args.pending_fallback,
            refresh=args.refresh,
        ),
        baseline_seconds=args.baseline,
        after_seconds=args.after,
        gap_seconds=args.gap,
        max_seconds=args.max_seconds,
    )
    modes = ("alternating", "single-user") if args.mode == "both" else (args.mode,)
    results: list[dict[str, Any]] = []
    failed = False
    function_output: list[str] = []
    with loopback_only():
        for mode in modes:
            report, output, leaked = soak_one(kind, mode, config, dual_passwords=args.dual_passwords)
            function_output.append(f"===== {mode} =====\n{output}")
            print(f"\n== soak: {mode} ==")
            print(format_report(report))
            print(f"{'passwords found in any output'.ljust(38)}  {leaked}")
            results.append({**report.as_dict(), "passwords_in_output": leaked})
            failed |= bool(leaked) or report.rotations_completed < report.rotations_requested
            failed |= not report.final_current_works
            if mode == "alternating" or (mode == "single-user" and kind.name == "mysql" and args.dual_passwords):
                failed |= report.load.transactions_failed > 0
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps({"soak": results}, indent=2, default=str) + "\n")
    (args.json.parent / "soak-function-output.log").write_text("\n".join(function_output))
    print(f"\nJSON report: {args.json}")
    return 1 if failed else 0


def soak_one(kind: ServerKind, mode: str, config: Any, *, dual_passwords: bool = True) -> tuple[Any, str, int]:
    """One soak on a fresh private server and a fresh moto; returns (report, function output, leaks)."""
    import boto3
    from moto import mock_aws

    from rotator import handler as handler_module
    from tests.support.lambda_context import FakeLambdaContext
    from tests.support.soak import faithful_moto, leaks, run_soak
    from tests.support.world import make_world, reset_server

    with tempfile.TemporaryDirectory(prefix="rotator-soak-") as tmp, kind.running(Path(tmp)) as server:
        os.environ["ROTATOR_CA_BUNDLE"] = str(server.pki.ca_file)
        fresh_container()
        captured = io.StringIO()
        with mock_aws(), faithful_moto(), function_output(captured):
            client = boto3.client("secretsmanager", region_name="us-east-1")
            single_user = mode == "single-user"
            world = make_world(server, client, single_user=single_user, dual_passwords=single_user and dual_passwords)

            def invoke(event: dict[str, Any]) -> Any:
                return handler_module.lambda_handler(event, FakeLambdaContext())

            report = run_soak(world, invoke, config, mode=mode)
            passwords = world.all_passwords()
        fresh_container()
        try:
            reset_server(server)  # drop the soak's users and schemas; the datadir goes next
        except Exception as exc:  # the report stands; the private datadir is removed anyway
            print(f"note: could not reset the private server ({type(exc).__name__}); removing its datadir")
        output = captured.getvalue()
        leaked = leaks(output + json.dumps(report.as_dict(), default=str), passwords)
        return report, output, leaked


if __name__ == "__main__":
    sys.exit(main())
