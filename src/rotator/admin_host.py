"""Where an admin secret's credentials may be sent: the admin's own host, and only that.

An admin secret with a ``host`` logs in there. An admin secret that RDS manages
(``ManageMasterUserPassword``: ``rds!cluster-…`` / ``rds!db-…``) holds only ``username``
and ``password``. Its host must then be confirmed by someone who may say where the
admin's password goes, never taken from the application secret alone: whoever can
write an application secret (its owners, a deploy role, the planted pending value of
issue 21) would otherwise choose the server that receives the admin's password.

A hostless admin secret is paired with a host by, in this order:

1. the operator: an ``ADMIN_SECRET_HOSTS`` entry for it (the stack's
   ``AdminSecretHosts``), ``<masterarn>=<host>[:<port>]``, the key written exactly as the
   application secrets' ``masterarn``. The admin logs in to that host (port: the entry's,
   else the application secret's);
2. RDS itself: the tag RDS puts on the secrets it manages (``aws:rds:primaryDBClusterArn``
   or ``aws:rds:primaryDBInstanceArn``; ``aws:`` tags cannot be set by anyone else). The
   application's host must then be an endpoint of that cluster or instance, by name:
   ``<cluster>.cluster-[ro-]<id>.<region>.rds.amazonaws.com`` (the admin logs in to the
   cluster's writer endpoint ``<cluster>.cluster-<id>…``), or
   ``<instance>.<id>.<region>.rds.amazonaws.com``.

Anything else is an :class:`~rotator.errors.AdminHostError` naming the secret and the
problem, before any login. Whatever the host, admin logins always use verified TLS with
the admin secret's own ``ssl_ca`` or the function's CA bundle (rotator.backends.mysql): the
application secret's ``"ssl": false`` and ``ssl_ca`` never apply to them.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from rotator.arns import RdsResource
from rotator.errors import AdminHostError
from rotator.secret import DatabaseSecret
from rotator.settings import ConfiguredHost

CLUSTER_TAG = "aws:rds:primaryDBClusterArn"
INSTANCE_TAG = "aws:rds:primaryDBInstanceArn"
SETTING = "ADMIN_SECRET_HOSTS"  # read by rotator.settings
# The DNS suffix of RDS endpoints per partition; elsewhere only ADMIN_SECRET_HOSTS confirms a host.
_DNS_SUFFIX = {"aws": "amazonaws.com", "aws-us-gov": "amazonaws.com", "aws-cn": "amazonaws.com.cn"}


class ConfirmedAdmin(NamedTuple):
    """The admin secret with the host its login goes to, and what confirmed that host."""

    secret: DatabaseSecret
    confirmed_by: str


def confirm_admin_host(
    app: DatabaseSecret,
    admin: DatabaseSecret,
    configured: Mapping[str, ConfiguredHost],
    tags: Callable[[], Mapping[str, str]],
) -> ConfirmedAdmin:
    """``admin`` with the host its login may go to (see the module's rules). ``tags`` reads
    the admin secret's tags (DescribeSecret); it is called only for a hostless admin secret
    that no ``ADMIN_SECRET_HOSTS`` entry names."""
    masterarn = admin.secret_id
    entry = configured.get(masterarn)
    if admin.host:
        if entry is not None and (entry.host.lower(), entry.port or admin.port) != (admin.host.lower(), admin.port):
            raise AdminHostError(
                app.secret_id,
                f"admin secret {masterarn} names host {admin.host}:{admin.port}, "
                f"but {SETTING} confirms {entry} for it; correct one of them",
            )
        return ConfirmedAdmin(admin, "the admin secret's own host")
    if entry is not None:
        port = entry.port or app.port
        return ConfirmedAdmin(dataclasses.replace(admin, host=entry.host, port=port), f"{SETTING}")
    found = {key: value for key, value in tags().items() if key in (CLUSTER_TAG, INSTANCE_TAG)}
    if not found:
        raise AdminHostError(
            app.secret_id,
            f"admin secret {masterarn} has no host, and nothing confirms the application's host "
            f"{app.host} for it: no {SETTING} entry names it, and it carries no {CLUSTER_TAG} or "
            f"{INSTANCE_TAG} tag (RDS puts one on the secrets it manages); add "
            f"'{masterarn}=<host>' to {SETTING} (the stack's AdminSecretHosts)",
        )
    tag, value = next(iter(sorted(found.items())))
    resource = RdsResource.parse(value)
    if resource is None or resource.kind != ("cluster" if tag == CLUSTER_TAG else "db"):
        raise AdminHostError(app.secret_id, f"admin secret {masterarn}: tag {tag} is not an RDS ARN of that kind")
    writer = _writer_endpoint(resource, app.host or "")
    if writer is None:
        raise AdminHostError(
            app.secret_id,
            f"admin secret {masterarn} has no host and belongs to {resource.describe()} ({tag}), "
            f"but the application's host {app.host} is not an endpoint of it "
            f"({_endpoint_pattern(resource)}); point the application secret's host at it, or "
            f"confirm the admin's host in {SETTING} (the stack's AdminSecretHosts)",
        )
    confirmed = dataclasses.replace(admin, host=writer, port=app.port)
    return ConfirmedAdmin(confirmed, f"tag {tag} ({resource.describe()})")


def _writer_endpoint(resource: RdsResource, host: str) -> str | None:
    """The writer endpoint of ``resource`` if ``host`` is one of its endpoints, else None."""
    suffix = _DNS_SUFFIX.get(resource.partition)
    host = host.lower().rstrip(".")
    tail = f".{resource.region}.rds.{suffix}"
    if suffix is None or not host.endswith(tail):
        return None
    labels = host[: -len(tail)].split(".")
    if len(labels) != 2 or labels[0] != resource.identifier:
        return None
    if resource.kind == "cluster":
        # The writer (cluster-) and reader (cluster-ro-) endpoints; the admin changes users on the writer.
        match = re.fullmatch(r"cluster-(?:ro-)?([a-z0-9]+)", labels[1])
        return f"{resource.identifier}.cluster-{match[1]}{tail}" if match else None
    return host if re.fullmatch(r"[a-z0-9]+", labels[1]) else None


def _endpoint_pattern(resource: RdsResource) -> str:
    suffix = _DNS_SUFFIX.get(resource.partition)
    if suffix is None:
        return f"partition {resource.partition}: confirm the host in {SETTING}"
    middle = "cluster-[ro-]<id>" if resource.kind == "cluster" else "<id>"
    return f"{resource.identifier}.{middle}.{resource.region}.rds.{suffix}"
