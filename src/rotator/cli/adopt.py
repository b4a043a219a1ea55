"""``rotator adopt SECRET [--apply]``: bring an existing database to the owner role.

On PostgreSQL a user owns what it creates; with alternating users the other user then
gets "permission denied" on it after the next rotation (docs/postgresql.md,
"Ownership"). Adoption makes a NOLOGIN owner role (the user's ``role`` setting, or
``<user>_owner``), gives it the user's privileges, makes both users members that create
as it, and moves what they own to it. The admin of the secret's ``masterarn`` does it.

A dry run is the default: the plan is read from the catalogue and printed, nothing
changes. ``--apply`` runs the same plan in one transaction: all of it or nothing.
``rotator check`` reports ``db.ownership`` when adoption is needed.
"""

from __future__ import annotations

import argparse
from typing import Any

from rotator.admin_access import AdminAccess
from rotator.cli.context import Context, UsageError
from rotator.cli.output import ExitCode
from rotator.ports import CURRENT, SharedOwnership
from rotator.secret import DatabaseSecret


def add_parser(subparsers: Any, parents: list[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "adopt",
        parents=parents,
        help="bring a PostgreSQL user (and its twin) to the owner role (a dry run unless --apply)",
        description=(
            "Print the statements that make the objects the secret's user and its twin create and own shared "
            "through an owner role (the admin of the secret's masterarn runs them); with --apply, run them in "
            "one transaction."
        ),
    )
    parser.add_argument("secret", metavar="SECRET", help="secret name or ARN (alternating users: with a masterarn)")
    parser.add_argument("--apply", action="store_true", help="run the plan (default: print it, change nothing)")
    parser.set_defaults(command=run)


def run(ctx: Context, args: argparse.Namespace) -> ExitCode:
    details = ctx.store.describe(args.secret)
    version = details.version_with(CURRENT)
    value = ctx.store.get_version(details.arn, version, CURRENT) if version else None
    current = DatabaseSecret.parse(details.arn, value)
    if not current.masterarn:
        raise UsageError(f"{details.name}: adoption is made by the admin, and the secret has no masterarn")
    twin = current.twin_username if current.alternates else None
    admin = AdminAccess(ctx.store, ctx.database, current.masterarn, ctx.settings.admin_hosts)
    with admin.session(current) as session:
        if not isinstance(session, SharedOwnership):
            ctx.out.line(f"{details.name}: nothing to adopt: on this engine accounts do not own what they create")
            return ExitCode.OK
        before = session.ownership(current.username, twin)
        adoption = session.adopt(current.username, twin, apply=args.apply) if before.needs_adoption else None
    result = "unchanged" if adoption is None else ("adopted" if adoption.applied else "would-adopt")
    if ctx.out.json_mode:
        ctx.out.document(
            {
                "command": "adopt",
                "secret": details.arn,
                "result": result,
                "owner_role": adoption.owner_role if adoption else before.owner_role,
                "statements": list(adoption.statements) if adoption else [],
            }
        )
        return ExitCode.OK
    if adoption is None:
        ctx.out.line(f"{details.name}: '{current.username}' already creates as owner role '{before.owner_role}'")
        return ExitCode.OK
    for statement in adoption.statements:
        ctx.out.line(statement)
    if adoption.applied:
        ctx.out.line(f"{details.name}: applied {len(adoption.statements)} statement(s) in one transaction")
    else:
        ctx.out.line(
            f"{details.name}: dry run, nothing changed; run 'rotator adopt {details.name} --apply' to apply "
            f"these {len(adoption.statements)} statement(s) in one transaction"
        )
    return ExitCode.OK
