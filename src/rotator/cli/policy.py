"""``rotator policy resource|endpoint|kms``: print the policies of :mod:`rotator.iam_policies`.

Each kind prints, by default, only the statements rotator needs, to add to the
policy already in place: a secret, an endpoint or a key is often shared, and a
complete replacement would cut its other users off. ``--merge FILE`` prints the
existing policy with the statements merged in; ``--replace`` prints a complete
policy, for a resource nothing else uses.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from rotator import iam_policies
from rotator.cli.context import Context, UsageError
from rotator.cli.output import ExitCode
from rotator.errors import SecretFormatError, SecretStoreError
from rotator.ports import CURRENT
from rotator.secret import DatabaseSecret

KINDS = ("resource", "endpoint", "kms")


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "policy",
        parents=parents,
        help="print the secret resource policy, the VPC endpoint policy or the KMS key policy statements",
        description=(
            "Print the policy statements rotator needs (JSON), to add to the policy in place; "
            "--merge FILE prints that policy with them merged in, --replace a complete policy."
        ),
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{" + ",".join(KINDS) + "}")

    resource = kinds.add_parser(
        "resource",
        parents=parents,
        help="secret resource policy (the lock): reads and writes only through the VPC endpoint",
        description=(
            "Deny reading or writing the secret's value unless the request comes through one of the endpoints "
            "or from a break-glass principal; with --writer, any write by anyone else; and any change of the "
            "policy itself but by break-glass and, through CloudFormation, the --lock-manager principals. "
            "Configuring rotation stays open; AWS services acting for a caller are not exempt."
        ),
    )
    lock_options(resource)
    _output_options(resource)

    endpoint = kinds.add_parser(
        "endpoint",
        parents=parents,
        help="endpoint policy: exactly what rotation, the operators and the named readers need",
        description=(
            "Allow, through the Secrets Manager endpoint, the rotation of the secrets (and reading their "
            "admin secrets and GetRandomPassword), the operator CLI's calls and, for the readers, reading the secrets."
        ),
    )
    _secret_options(endpoint)
    endpoint.add_argument("--readers", nargs="+", default=[], metavar="ROLE_ARN", help="roles that read the secrets")
    endpoint.add_argument(
        "--function-role",
        action="append",
        default=[],
        metavar="ROLE_ARN",
        help="the rotation function's role (repeatable; else any principal)",
    )
    endpoint.add_argument(
        "--operators", nargs="+", default=[], metavar="ARN", help="roles that run rotator from inside the VPC"
    )
    endpoint.add_argument(
        "--canary-role",
        action="append",
        default=[],
        metavar="ROLE_ARN",
        help="the readiness check's role (repeatable): may only read the secrets and admin secrets",
    )
    endpoint.add_argument(
        "--canary-lists",
        action="store_true",
        help="the readiness check also lists the account's secrets (the stack's CanaryChecksAllRotatedSecrets)",
    )
    endpoint.add_argument(
        "--shared",
        action="store_true",
        help="the endpoint serves other clients too: with --replace, everyone keeps every other secret",
    )
    _output_options(endpoint)

    kms = kinds.add_parser(
        "kms",
        parents=parents,
        help="key policy statements: the rotation role uses the secrets' key only via Secrets Manager",
        description=(
            "Let the rotation role decrypt (and, for the rotated secrets, encrypt) with the secrets' customer "
            "managed key only through Secrets Manager and only for these secrets (kms:EncryptionContext:SecretARN)."
        ),
    )
    _secret_options(kms)
    role = kms.add_mutually_exclusive_group(required=True)
    role.add_argument("--role", action="append", metavar="ROLE_ARN", help="the rotation role (repeatable)")
    role.add_argument(
        "--stack",
        metavar="NAME",
        help="the rotator stack's name: names its roles' path (role/rotator/NAME/*), before the first deploy",
    )
    _output_options(kms)

    for kind in (resource, endpoint, kms):
        kind.set_defaults(command=run)


def lock_options(parser: argparse.ArgumentParser) -> None:
    """The lock's arguments (``policy resource`` and ``lock``)."""
    parser.add_argument(
        "--endpoint", action="append", required=True, metavar="VPCE", help="VPC endpoint id (repeatable)"
    )
    parser.add_argument(
        "--break-glass",
        action="append",
        default=[],
        metavar="ARN",
        help="IAM role or user ARN that may read, write and change the lock from anywhere (required; repeatable; *)",
    )
    parser.add_argument(
        "--writer",
        action="append",
        default=[],
        metavar="ARN",
        help=(
            "the only principals besides break-glass that may write the value, from any path: the rotation "
            "role and the operators (repeatable; * allowed; for the secrets this function rotates)"
        ),
    )
    parser.add_argument(
        "--lock-manager",
        action="append",
        default=[],
        metavar="ARN",
        help="principal a stack owning the lock is deployed as: may change it, only through CloudFormation",
    )


def lock_policy(ctx: Context, args: argparse.Namespace) -> iam_policies.Policy:
    """The lock for these arguments (a PolicyError without --break-glass); then a warning for
    a choice that is easy to regret."""
    lock = iam_policies.resource_policy(
        args.endpoint, args.break_glass, writers=args.writer, lock_managers=args.lock_manager
    )
    if not args.writer:
        ctx.out.warning(
            "no --writer: any principal allowed by IAM and the endpoint policy may write these secrets through "
            "the endpoint; name the rotation role and the operators for the secrets this function rotates"
        )
    return lock


def _secret_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--secrets", nargs="+", default=[], metavar="ARN", help="rotated secrets' ARNs")
    parser.add_argument("--admin-secrets", nargs="+", default=[], metavar="ARN", help="their admin secrets' ARNs")
    parser.add_argument(
        "--resolve-admins",
        action="store_true",
        help="read each secret's masterarn (needs AWS access) and add the admin secrets",
    )


def _output_options(parser: argparse.ArgumentParser) -> None:
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument(
        "--merge",
        metavar="FILE",
        type=Path,
        help="the policy in place (JSON; - reads stdin): print it with rotator's statements merged in",
    )
    mode.add_argument(
        "--replace", action="store_true", help="print a complete policy (only for a resource nothing else uses)"
    )


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    existing = _existing(args.merge) if args.merge else None
    try:
        document = _generate(ctx, args)
        if existing is not None:
            for sid in iam_policies.denies(existing):
                ctx.out.warning(f"the policy in place has a Deny statement ({sid}): it may block what is added")
            document = iam_policies.merge(existing, document)
    except iam_policies.PolicyError as exc:
        raise UsageError(str(exc)) from None
    if existing is None and not args.replace:
        ctx.out.warning(
            f"these are statements to add to the {args.kind} policy in place; --merge FILE prints the merged "
            "policy, --replace a complete one"
        )
        ctx.out.stdout.write(json.dumps(document["Statement"], indent=2) + "\n")
        return ExitCode.OK
    size = len(json.dumps(document, separators=(",", ":")))
    if size > iam_policies.SIZE_LIMITS[args.kind]:
        ctx.out.warning(f"the policy has {size} characters; AWS accepts {iam_policies.SIZE_LIMITS[args.kind]} at most")
    ctx.out.stdout.write(json.dumps(document, indent=2) + "\n")
    return ExitCode.OK


def _generate(ctx: Context, args: argparse.Namespace) -> iam_policies.Policy:
    if args.kind == "resource":
        return lock_policy(ctx, args)
    admins = list(args.admin_secrets)
    if args.resolve_admins:
        admins += _admin_secrets(ctx, args.secrets)
    elif not admins:
        ctx.out.warning(
            "no --admin-secrets: alternating-user rotation reads each secret's admin secret "
            "through the endpoint (and with its key); list them, or pass --resolve-admins"
        )
    if args.kind == "kms":
        named = [*args.secrets, *admins]
        if not named:
            raise iam_policies.PolicyError("--secrets or --admin-secrets: at least one secret ARN is needed")
        roles = args.role or [iam_policies.stack_role_pattern(named[0], args.stack)]
        return iam_policies.kms_key_policy(args.secrets, admins, roles)
    if not args.secrets:
        raise iam_policies.PolicyError("--secrets: at least one secret ARN is needed")
    if args.canary_lists and not args.canary_role:
        raise iam_policies.PolicyError("--canary-lists needs --canary-role")
    return iam_policies.endpoint_policy(
        args.secrets,
        admins,
        args.readers,
        args.function_role,
        args.operators,
        canary_roles=args.canary_role,
        canary_lists=args.canary_lists,
        shared=args.shared,
    )


def _existing(path: Path) -> dict[str, Any]:
    """The policy in place; an empty file, ``None`` or ``null`` (what the AWS CLI prints
    for a resource without a policy) is no policy."""
    try:
        text = sys.stdin.read() if str(path) == "-" else path.read_text(encoding="utf-8")
    except OSError as exc:
        raise UsageError(f"--merge {path}: {exc.strerror}") from None
    if text.strip() in ("", "None", "null"):
        return {"Version": iam_policies.VERSION, "Statement": []}
    try:
        loaded = json.loads(text)
    except json.JSONDecodeError as exc:
        raise UsageError(f"--merge {path}: not JSON ({exc.msg}, line {exc.lineno})") from None
    if not isinstance(loaded, dict):
        raise UsageError(f"--merge {path}: not a policy document")
    return loaded


def _admin_secrets(ctx: Context, secrets: list[str]) -> list[str]:
    found: list[str] = []
    for secret in secrets:
        details = ctx.store.describe(secret)
        version = details.version_with(CURRENT)
        if version is None:
            raise SecretStoreError(details.arn, "no AWSCURRENT version to read masterarn from")
        try:
            value = DatabaseSecret.parse(details.arn, ctx.store.get_version(details.arn, version, CURRENT))
        except SecretFormatError:
            ctx.out.warning(f"{details.name}: value is not a rotator secret; no admin secret added")
            continue
        if value.masterarn:
            arn = value.masterarn
            if not arn.startswith("arn:"):  # masterarn may hold a name: policies need the ARN
                arn = ctx.store.describe(arn).arn
            found.append(arn)
    return found
