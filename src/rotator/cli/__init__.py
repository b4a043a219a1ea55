"""``rotator``: the operator's command line, built on the function's own adapters.

    rotator check SECRET...            read-only pre-flight
    rotator attach SECRET... --function-arn ARN --schedule EXPR
    rotator status [SECRET...|--all]   rotation state, stuck rotations
    rotator fix SECRET                 clear a stale AWSPENDING label
    rotator policy KIND ...            resource|endpoint|kms policy statements
    rotator lock SECRET... --endpoint VPCE [--apply]   merge the lock into each policy
    rotator rotate SECRET --local      the four steps, in this process
    rotator adopt SECRET [--apply]     PostgreSQL: bring a user to the owner role

Exit codes are :class:`rotator.cli.output.ExitCode`. Errors are one line on stderr
(a traceback only with --debug); no password is ever printed.
"""

from __future__ import annotations

import argparse
import logging
import sys
import traceback
from collections.abc import Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, NoReturn

from rotator.cli import adopt, attach, check, lock, policy, rotate, status
from rotator.cli.context import Context, Options, UsageError, classify, describe_error, hint
from rotator.cli.output import ExitCode, Output

__all__ = ["build_parser", "main"]


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        # One line, through the same path as every other usage error.
        raise UsageError(f"{message} (see '{self.prog} --help')")


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """Options accepted before and after the command, like the AWS CLI's."""

    def default(value: Any) -> Any:
        # Sub-commands must not overwrite a value given before the command.
        return argparse.SUPPRESS if suppress else value

    group = parser.add_argument_group("global options")
    group.add_argument("--endpoint-url", default=default(None), help="Secrets Manager endpoint URL")
    group.add_argument("--region", default=default(None), help="AWS region")
    group.add_argument("--profile", default=default(None), help="AWS profile from the AWS config files")
    group.add_argument(
        "--ca-bundle",
        type=Path,
        default=default(None),
        metavar="PEM",
        help="CA certificates for database TLS (default: ROTATOR_CA_BUNDLE or the bundled RDS CAs)",
    )
    group.add_argument("--json", action="store_true", default=default(False), help="one JSON document on stdout")
    group.add_argument("--quiet", "-q", action="store_true", default=default(False), help="no progress on stderr")
    group.add_argument("--debug", action="store_true", default=default(False), help="tracebacks and step logs")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="rotator",
        description="Operate rotator, the Secrets Manager rotation function for MySQL, Aurora MySQL and MariaDB.",
        epilog="Exit codes: 0 ok, 1 problems found, 2 usage, 3 not found, 4 access denied, 5 throttled/unreachable.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {_version()}")
    _global_options(parser, suppress=False)
    common = _Parser(add_help=False)
    _global_options(common, suppress=True)
    commands = parser.add_subparsers(dest="name", required=True, metavar="COMMAND", parser_class=_Parser)
    check.add_parser(commands, [common])
    attach.add_parser(commands, [common])
    status.add_parsers(commands, [common])
    policy.add_parser(commands, [common])
    lock.add_parser(commands, [common])
    rotate.add_parser(commands, [common])
    adopt.add_parser(commands, [common])
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    preliminary = Output()
    try:
        args = build_parser().parse_args(argv)
    except UsageError as exc:
        preliminary.error(str(exc))
        return ExitCode.USAGE
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)

    out = Output(json_mode=args.json, quiet=args.quiet)
    if args.debug:
        _debug_logging()
    ctx = Context(
        Options(
            endpoint_url=args.endpoint_url,
            region=args.region,
            profile=args.profile,
            ca_bundle=args.ca_bundle,
            debug=args.debug,
        ),
        out,
    )
    try:
        return int(args.command(ctx, args))
    except KeyboardInterrupt:
        out.error("interrupted")
        return ExitCode.INTERRUPTED
    except Exception as exc:
        code = classify(exc)
        if args.debug:
            out.stderr.write(out.redactor.scrub("".join(traceback.format_exception(exc))))
        message = describe_error(exc)
        action = hint(exc)
        out.error(message + (f" ({action})" if action else ""))
        if args.json:
            out.document({"command": args.name, "ok": False, "error": message, "exit_code": int(code)})
        return code


def _debug_logging() -> None:
    # The steps' own log lines, on stderr. botocore stays at WARNING: its DEBUG
    # output includes request bodies, and PutSecretValue's body is a password.
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    for noisy in ("botocore", "boto3", "urllib3", "s3transfer"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def _version() -> str:
    try:
        return version("rotator")
    except PackageNotFoundError:
        return "unknown"
