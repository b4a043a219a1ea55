"""``rotator policy resource|endpoint``: print the policies of :mod:`rotator.policies`."""

from __future__ import annotations

import argparse
import json
from typing import Any

from rotator import policies
from rotator.cli.context import Context, UsageError
from rotator.cli.output import ExitCode
from rotator.errors import SecretFormatError, SecretStoreError
from rotator.ports import CURRENT
from rotator.secret import DatabaseSecret


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "policy",
        parents=parents,
        help="print the secret resource policy or the VPC endpoint policy",
        description="Print an IAM policy document (JSON) for a secret or for the Secrets Manager endpoint.",
    )
    kinds = parser.add_subparsers(dest="kind", required=True, metavar="{resource,endpoint}")

    resource = kinds.add_parser(
        "resource",
        parents=parents,
        help="secret resource policy: deny GetSecretValue outside the VPC endpoint",
        description=(
            "Deny secretsmanager:GetSecretValue unless the request comes through one of the endpoints. "
            "Nothing else is denied; the break-glass principals and AWS services are exempt."
        ),
    )
    resource.add_argument(
        "--endpoint", action="append", required=True, metavar="VPCE", help="VPC endpoint id (repeatable)"
    )
    resource.add_argument(
        "--break-glass",
        action="append",
        default=[],
        metavar="ARN",
        help="IAM role or user ARN that may read from anywhere (repeatable; * wildcards allowed)",
    )
    resource.set_defaults(command=run)

    endpoint = kinds.add_parser(
        "endpoint",
        parents=parents,
        help="endpoint policy: exactly what rotation and the named readers need",
        description=(
            "Allow, through the Secrets Manager endpoint, the rotation of the secrets (and reading their "
            "admin secrets and GetRandomPassword) and, for the readers, reading the secrets."
        ),
    )
    endpoint.add_argument("--secrets", nargs="+", required=True, metavar="ARN", help="rotated secrets' ARNs")
    endpoint.add_argument("--admin-secrets", nargs="+", default=[], metavar="ARN", help="their admin secrets' ARNs")
    endpoint.add_argument(
        "--resolve-admins",
        action="store_true",
        help="read each secret's masterarn (needs AWS access) and add the admin secrets",
    )
    endpoint.add_argument("--readers", nargs="+", default=[], metavar="ROLE_ARN", help="roles that read the secrets")
    endpoint.add_argument(
        "--function-role", metavar="ROLE_ARN", help="the rotation function's role (else any principal)"
    )
    endpoint.set_defaults(command=run)


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    try:
        if args.kind == "resource":
            if not args.break_glass:
                ctx.out.warning(
                    "no --break-glass: nobody will read these secrets from outside the VPC endpoint "
                    "(the template refuses this combination)"
                )
            document = policies.resource_policy(args.endpoint, args.break_glass)
        else:
            admins = list(args.admin_secrets)
            if args.resolve_admins:
                admins += _admin_secrets(ctx, args.secrets)
            elif not admins:
                ctx.out.warning(
                    "no --admin-secrets: alternating-user rotation reads each secret's admin secret "
                    "through the endpoint; list them, or pass --resolve-admins"
                )
            document = policies.endpoint_policy(args.secrets, admins, args.readers, args.function_role)
    except policies.PolicyError as exc:
        raise UsageError(str(exc)) from None
    ctx.out.stdout.write(json.dumps(document, indent=2) + "\n")
    return ExitCode.OK


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
