"""The policies that keep rotated secrets inside the VPC, as plain data.

- :func:`resource_policy` goes on each secret (rotated *and* admin secrets): the
  lock. Outside the VPC endpoint nobody but the break-glass principals may read the
  value or write it (a version, a label, the value, the secret itself); with named
  writers (the rotation role, the operators) nobody else may write it from anywhere;
  nobody but break-glass and the named lock managers (through CloudFormation) may
  change or remove the lock. AWS services acting as themselves (service principals,
  which no stolen credential can be) are exempt; a service acting *for* a principal
  (forward access sessions, e.g. CloudFormation resolving
  ``{{resolve:secretsmanager:...}}``) is not: that path would let anyone with
  ``GetSecretValue`` in IAM read the secret from outside the VPC. Configuring rotation
  (``RotateSecret``, ``DescribeSecret``, ...) stays open from anywhere, and rotation is
  not affected: Secrets Manager invokes the function through Lambda, and the function
  calls Secrets Manager through the endpoint.
- :func:`endpoint_policy` goes on the Secrets Manager interface endpoint. It lets
  through exactly what rotation needs (the four calls on the rotated secrets,
  ``GetSecretValue`` and ``DescribeSecret`` on the admin secrets, ``GetRandomPassword``), what the
  scheduled readiness check reads (:data:`CANARY_SECRET_ACTIONS` ...), what the
  operator CLI needs (:data:`OPERATOR_SECRET_ACTIONS` ...) and, for the named
  readers, reading the rotated secrets. With ``shared`` (an endpoint other
  clients use too) every principal of the account keeps every *other* secret of the
  account (:func:`same_account`: no way out to another account).
- :func:`kms_key_policy` goes on the secrets' customer managed key: the rotation
  role may decrypt and encrypt only through Secrets Manager and only for these
  secrets (``kms:EncryptionContext:SecretARN``).

Every principal is matched by ``aws:PrincipalArn`` (``ArnLike``), so a statement
takes any number of principals, ``*`` patterns (IAM Identity Center roles,
a role path) and roles that do not exist yet.

All functions are pure and return dicts: the CLI prints them, the template's
policies are tested against them, and the test suite evaluates both with a real
policy evaluator. :func:`merge` adds statements to a policy that is already in
place without touching its other statements.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

VERSION = "2012-10-17"

ROTATION_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    # A single user's setSecret looks among the unlabelled versions for an abandoned
    # rotation's password before giving up (rotator.recovery).
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecretVersionStage",
)
# DescribeSecret: the RDS tag that confirms a hostless admin secret's host (rotator.admin_host).
ADMIN_SECRET_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
RANDOM_PASSWORD_ACTIONS = ("secretsmanager:GetRandomPassword",)
# Applications read the value; caching clients (aws-secretsmanager-caching) also
# call DescribeSecret to notice a new AWSCURRENT version.
READER_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
# Exactly what the `rotator` CLI calls (tests/unit/test_cli_policy.py reads the
# calls out of the code): check/status/fix/attach/rotate --local on the rotated
# secrets, check's read of the admin secrets, `check`'s and `lock`'s read and
# write of the resource policy, and the calls that name no secret. The endpoint lets
# `PutResourcePolicy` through; the lock itself decides who may change it.
OPERATOR_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:PutResourcePolicy",
    "secretsmanager:PutSecretValue",
    "secretsmanager:RotateSecret",
    "secretsmanager:UpdateSecretVersionStage",
)
OPERATOR_ADMIN_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:GetSecretValue",
    "secretsmanager:PutResourcePolicy",
)
OPERATOR_ACCOUNT_ACTIONS = ("secretsmanager:GetRandomPassword", "secretsmanager:ListSecrets")
# The scheduled readiness check (the canary) only reads: the rotated secrets'
# description, labels and current value, the admin secrets' value, and, when it
# checks every secret of the function, the list of secrets.
CANARY_SECRET_ACTIONS = (
    "secretsmanager:DescribeSecret",
    "secretsmanager:GetSecretValue",
    "secretsmanager:ListSecretVersionIds",
)
CANARY_ADMIN_ACTIONS = ("secretsmanager:DescribeSecret", "secretsmanager:GetSecretValue")
CANARY_ACCOUNT_ACTIONS = ("secretsmanager:ListSecrets",)
# The lock (resource_policy), decided action by action (docs/deploy.md, "What the
# lock denies"). Reading the value: GetSecretValue (BatchGetSecretValue is authorised
# per secret as GetSecretValue, so it needs no row of its own and, acting on no
# resource, could not have one).
LOCK_READ_ACTIONS = ("secretsmanager:GetSecretValue",)
# Writing the value, a version, a label, or the secret's existence: each lets a caller
# put a value it knows where rotation or an application takes it (PutSecretValue of a
# pending version is the planted-value attack), or carry the value out of the lock's
# reach (ReplicateSecretToRegions copies it with its policy to a region where the
# endpoint id never matches, under a key of the caller's choosing; DeleteSecret with
# ForceDeleteWithoutRecovery removes the lock, and a new secret of the same name has none).
LOCK_WRITE_ACTIONS = (
    "secretsmanager:PutSecretValue",
    "secretsmanager:UpdateSecret",
    "secretsmanager:UpdateSecretVersionStage",
    "secretsmanager:DeleteSecret",
    "secretsmanager:ReplicateSecretToRegions",
)
# Changing or removing the lock itself.
LOCK_POLICY_ACTIONS = ("secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy")
# Left open on purpose, from anywhere: configuring and watching rotation, and what
# neither reads nor writes the value (tests/template/test_decisions.py has a row each).
LOCK_OPEN_ACTIONS = (
    "secretsmanager:RotateSecret",
    "secretsmanager:CancelRotateSecret",
    "secretsmanager:DescribeSecret",
    "secretsmanager:ListSecretVersionIds",
    "secretsmanager:GetResourcePolicy",
    "secretsmanager:ValidateResourcePolicy",
    "secretsmanager:TagResource",
    "secretsmanager:UntagResource",
    "secretsmanager:RestoreSecret",
    "secretsmanager:RemoveRegionsFromReplication",
)
# CloudFormation calls for the deploying principal (a forward access session, with or
# without a stack service role): aws:CalledVia names it.
CLOUDFORMATION = "cloudformation.amazonaws.com"
# The lock's statements, and those of earlier rotator versions (replaced by `rotator lock`).
LOCK_SIDS = (
    "DenyOutsideEndpoint",
    "DenyWritesByOthers",
    "DenyLockChangesByOthers",
    "DenyLockChangesOutsideCloudFormation",
)
RETIRED_LOCK_SIDS = ("DenyGetSecretValueOutsideEndpoint",)
# Secrets Manager encrypts a new version (PutSecretValue) with a data key and
# decrypts every read; it asks KMS itself, for the caller (kms:ViaService).
KMS_ROTATION_ACTIONS = ("kms:Decrypt", "kms:GenerateDataKey")
KMS_READ_ACTIONS = ("kms:Decrypt",)

# The documented size limits of each kind of policy (characters, white space included).
SIZE_LIMITS = {"endpoint": 20_480, "resource": 20_480, "kms": 32_768}

_ENDPOINT_ID = re.compile(r"^vpce-[0-9a-f]{8,17}$")
# arn:partition:service:region:account:resource; IAM principals have no region.
_ARN = re.compile(r"^arn:(aws[a-z-]*):([a-z0-9-]+):([a-z0-9-]*):(\d{12}|\*|):(.+)$")
_STACK_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9-]{0,127}$")


class PolicyError(ValueError):
    """An argument cannot be put into a policy (malformed endpoint id, ARN or policy document)."""


Policy = dict[str, Any]
Statement = dict[str, Any]


def resource_policy(
    endpoints: Sequence[str],
    break_glass: Sequence[str],
    *,
    writers: Sequence[str] = (),
    lock_managers: Sequence[str] = (),
) -> Policy:
    """The secret resource policy (the lock): see the module's docstring and docs/deploy.md.

    - Outside ``endpoints`` nobody but ``break_glass`` may read the value or write it
      (:data:`LOCK_READ_ACTIONS`, :data:`LOCK_WRITE_ACTIONS`).
    - With ``writers`` (the rotation role, the operators), nobody else may write, through
      any path: an endpoint shared with other clients does not let them plant a value.
    - Nobody but ``break_glass`` and ``lock_managers`` may change or remove the lock
      (:data:`LOCK_POLICY_ACTIONS`), and the managers only through CloudFormation
      (``aws:CalledVia``): they are the principals a stack's lock is deployed as.

    ``break_glass`` principals (IAM role or user ARNs, ``*`` wildcards allowed; at least
    one) may do all of it from anywhere, so an outage of the endpoint or the VPC never
    locks everyone out, and the lock can always be changed. AWS service principals acting
    as themselves are exempt from every statement (they carry no one's credentials and
    are allowed nothing unless a policy names them); a service acting *for* a caller
    (``aws:ViaAWSService``) is not.
    """
    endpoint_ids = _unique(_endpoint_id(endpoint) for endpoint in endpoints)
    if not endpoint_ids:
        raise PolicyError("at least one VPC endpoint id is needed")
    exempt = _principals(break_glass, "break-glass principal")
    if not exempt:
        # DenyLockChangesByOthers would then spare no one: nobody could ever change or
        # remove the lock again, nor read the secret when the endpoint is down.
        raise PolicyError("at least one break-glass principal is needed, or nobody could ever change the lock")
    writer_arns = _principals(writers, "writer principal")
    managers = _principals(lock_managers, "lock manager principal")
    statements = [
        _deny(
            "DenyOutsideEndpoint",
            [*LOCK_READ_ACTIONS, *LOCK_WRITE_ACTIONS],
            exempt,
            {"StringNotEquals": {"aws:SourceVpce": _one_or_list(endpoint_ids)}},
        )
    ]
    if writer_arns:
        statements.append(_deny("DenyWritesByOthers", LOCK_WRITE_ACTIONS, _unique([*writer_arns, *exempt])))
    statements.append(_deny("DenyLockChangesByOthers", LOCK_POLICY_ACTIONS, _unique([*exempt, *managers])))
    if managers:
        statements.append(
            _deny(
                "DenyLockChangesOutsideCloudFormation",
                LOCK_POLICY_ACTIONS,
                exempt,
                # A multi-valued key: true when the request came through no service at all.
                {"ForAllValues:StringNotEquals": {"aws:CalledVia": CLOUDFORMATION}},
            )
        )
    return _policy(statements)


def _deny(
    sid: str, actions: Sequence[str], exempt: Sequence[str], condition: Mapping[str, Any] | None = None
) -> Statement:
    block: dict[str, Any] = dict(condition or {})
    # A service principal calling as itself carries no one's credentials; it is
    # allowed nothing unless a policy names it. aws:ViaAWSService (a service calling
    # *for* a principal) is deliberately not exempt.
    block["BoolIfExists"] = {"aws:PrincipalIsAWSService": "false"}
    if exempt:
        block["ArnNotLike"] = {"aws:PrincipalArn": _one_or_list(list(exempt))}
    return {
        "Sid": sid,
        "Effect": "Deny",
        "Principal": "*",
        "Action": _one_or_list(list(actions)),
        "Resource": "*",
        "Condition": block,
    }


def endpoint_policy(
    secrets: Sequence[str],
    admin_secrets: Sequence[str] = (),
    readers: Sequence[str] = (),
    function_roles: Sequence[str] = (),
    operators: Sequence[str] = (),
    *,
    canary_roles: Sequence[str] = (),
    canary_lists: bool = False,
    shared: bool = False,
) -> Policy:
    """The Secrets Manager endpoint policy: rotation of ``secrets`` and their reads.

    Without ``function_roles`` the rotation statements name no principal: the
    function's own IAM policy still limits who can do what, and the endpoint
    policy limits *what* can pass through the endpoint. ``shared`` adds a
    statement that lets every principal use every secret *not* listed here, for an
    endpoint that serves other clients too (private DNS). ``canary_roles`` (the
    readiness check's role) may read the secrets and admin secrets and, with
    ``canary_lists``, list the account's secrets: nothing that writes.
    """
    secret_arns = _secrets(secrets, "secret")
    if not secret_arns:
        raise PolicyError("at least one secret ARN is needed")
    admin_arns = _secrets(admin_secrets, "admin secret")
    rotators = _principals(function_roles, "function role")
    statements = [_allow("RotationFunctionRotatesSecrets", rotators, ROTATION_ACTIONS, secret_arns)]
    if admin_arns:
        statements.append(_allow("RotationFunctionReadsAdminSecrets", rotators, ADMIN_SECRET_ACTIONS, admin_arns))
    statements.append(_allow("RotationFunctionGeneratesPasswords", rotators, RANDOM_PASSWORD_ACTIONS, ["*"]))
    statements += canary_statements(secret_arns, admin_arns, canary_roles, lists=canary_lists)
    reader_arns = _principals(readers, "reader principal")
    if reader_arns:
        statements.append(_allow("ApplicationsReadRotatedSecrets", reader_arns, READER_ACTIONS, secret_arns))
    statements += operator_statements(secret_arns, admin_arns, operators)
    if shared:
        # Everyone keeps every other secret of this account - and only of this
        # account: a principal of another account, or a secret in another account,
        # would make the endpoint a way out of the VPC (PutSecretValue into a secret
        # of one's own, credentials brought from outside).
        _, _, account = _same_place([*secret_arns, *admin_arns])
        statements.append(
            {
                "Sid": "OtherSecretsUnchanged",
                "Effect": "Allow",
                "Principal": "*",
                "Action": "secretsmanager:*",
                "NotResource": _one_or_list([*secret_arns, *admin_arns]),
                "Condition": same_account(account),
            }
        )
    return _policy(statements)


def same_account(account: str) -> dict[str, Any]:
    """The condition that keeps a catch-all endpoint statement inside one account."""
    return {"StringEquals": {"aws:PrincipalAccount": account, "aws:ResourceAccount": account}}


@dataclass(frozen=True)
class _Access:
    """What one kind of principal may do through the endpoint: (Sid, actions) on the
    rotated secrets, on the admin secrets, and on no resource (``*``)."""

    secrets: tuple[str, tuple[str, ...]]
    admin_secrets: tuple[str, tuple[str, ...]]
    account: tuple[str, tuple[str, ...]]

    def statements(
        self, principals: list[str], secrets: Sequence[str], admin_secrets: Sequence[str], *, account: bool
    ) -> list[Statement]:
        if not principals:
            return []
        statements = [_allow(self.secrets[0], principals, self.secrets[1], list(secrets))]
        if admin_secrets:
            statements.append(_allow(self.admin_secrets[0], principals, self.admin_secrets[1], list(admin_secrets)))
        if account:
            statements.append(_allow(self.account[0], principals, self.account[1], ["*"]))
        return statements


CANARY_ACCESS = _Access(
    ("CanaryReadsRotatedSecrets", CANARY_SECRET_ACTIONS),
    ("CanaryReadsAdminSecrets", CANARY_ADMIN_ACTIONS),
    ("CanaryListsSecrets", CANARY_ACCOUNT_ACTIONS),
)
OPERATOR_ACCESS = _Access(
    ("OperatorsManageRotatedSecrets", OPERATOR_SECRET_ACTIONS),
    ("OperatorsReadAdminSecrets", OPERATOR_ADMIN_ACTIONS),
    ("OperatorsListAndGenerate", OPERATOR_ACCOUNT_ACTIONS),
)


def canary_statements(
    secrets: Sequence[str], admin_secrets: Sequence[str], roles: Sequence[str], *, lists: bool = False
) -> list[Statement]:
    """Endpoint policy statements for the scheduled readiness check: reads only."""
    return CANARY_ACCESS.statements(_principals(roles, "canary role"), secrets, admin_secrets, account=lists)


def operator_statements(
    secrets: Sequence[str], admin_secrets: Sequence[str], operators: Sequence[str]
) -> list[Statement]:
    """Endpoint policy statements for operators running ``rotator`` inside the VPC."""
    return OPERATOR_ACCESS.statements(
        _principals(operators, "operator principal"), secrets, admin_secrets, account=True
    )


def kms_key_policy(secrets: Sequence[str], admin_secrets: Sequence[str], principals: Sequence[str]) -> Policy:
    """Key policy statements for the secrets' customer managed key.

    ``principals`` are the rotation role's ARN or a pattern such as
    :func:`stack_role_pattern`'s, which a key policy can name before the role
    exists. The statements delegate to IAM (principal: the account), so the role's
    own policy must allow the same calls, as the template's does.
    """
    secret_arns = _secrets(secrets, "secret")
    admin_arns = _secrets(admin_secrets, "admin secret")
    if not secret_arns and not admin_arns:
        raise PolicyError("at least one secret ARN is needed")
    partition, region, account = _same_place([*secret_arns, *admin_arns])
    roles = _principals(principals, "role")
    if not roles:
        raise PolicyError("the rotation role is needed (--role ARN or --stack NAME)")
    statements = []
    for sid, actions, arns in (
        ("RotatorEncryptsRotatedSecrets", KMS_ROTATION_ACTIONS, secret_arns),
        ("RotatorDecryptsAdminSecrets", KMS_READ_ACTIONS, admin_arns),
    ):
        if not arns:
            continue
        statements.append(
            {
                "Sid": sid,
                "Effect": "Allow",
                "Principal": {"AWS": f"arn:{partition}:iam::{account}:root"},
                "Action": _one_or_list(list(actions)),
                "Resource": "*",
                "Condition": {
                    "ArnLike": {"aws:PrincipalArn": _one_or_list(roles)},
                    "StringEquals": {
                        "kms:ViaService": f"secretsmanager.{region}.amazonaws.com",
                        "kms:CallerAccount": account,
                    },
                    "StringLike": {"kms:EncryptionContext:SecretARN": _one_or_list(arns)},
                },
            }
        )
    return _policy(statements)


def stack_role_pattern(secret_arn: str, stack: str) -> str:
    """The ARN pattern of the roles a rotator stack creates (path ``/rotator/STACK/``),
    in the secret's account: known before the first deploy."""
    if not _STACK_NAME.match(stack):
        raise PolicyError(f"not a CloudFormation stack name: {stack!r}")
    partition, _, account = _same_place([_arn(secret_arn, services={"secretsmanager"}, what="secret")])
    return f"arn:{partition}:iam::{account}:role/rotator/{stack}/*"


def merge(existing: Mapping[str, Any], addition: Policy) -> Policy:
    """``existing`` with ``addition``'s statements added.

    A statement of ``existing`` whose Sid one of ``addition``'s has is replaced
    (merging twice changes nothing); every other statement stays as it is.
    """
    statements = existing.get("Statement") if isinstance(existing, Mapping) else None
    if isinstance(statements, dict):
        statements = [statements]
    if not isinstance(statements, list) or not all(isinstance(s, dict) for s in statements):
        raise PolicyError("the existing policy has no Statement list")
    ours = {statement.get("Sid") for statement in addition["Statement"]}
    kept = [statement for statement in statements if statement.get("Sid") not in ours]
    return {"Version": existing.get("Version", VERSION), "Statement": [*kept, *addition["Statement"]]}


def denies(policy: Mapping[str, Any]) -> list[str]:
    """The Sids (or positions) of a policy's Deny statements: they may block what is added."""
    statements = policy.get("Statement", [])
    statements = [statements] if isinstance(statements, dict) else statements
    return [str(s.get("Sid", f"#{n}")) for n, s in enumerate(statements, 1) if s.get("Effect") == "Deny"]


def _allow(sid: str, principals: Sequence[str], actions: Sequence[str], resources: Sequence[str]) -> Statement:
    statement: Statement = {
        "Sid": sid,
        "Effect": "Allow",
        "Principal": "*",
        "Action": _one_or_list(list(actions)),
        "Resource": _one_or_list(list(resources)),
    }
    if principals:
        statement["Condition"] = {"ArnLike": {"aws:PrincipalArn": _one_or_list(list(principals))}}
    return statement


def _policy(statements: list[Statement]) -> Policy:
    return {"Version": VERSION, "Statement": statements}


def _secrets(arns: Iterable[str], what: str) -> list[str]:
    arns = [arns] if isinstance(arns, str) else arns  # one ARN, not its characters
    return _unique(_arn(arn, services={"secretsmanager"}, what=what) for arn in arns)


def _principals(arns: Iterable[str], what: str) -> list[str]:
    arns = [arns] if isinstance(arns, str) else arns
    return _unique(_arn(arn, services={"iam"}, what=what) for arn in arns)


def _same_place(arns: Sequence[str]) -> tuple[str, str, str]:
    places = {(m.group(1), m.group(3), m.group(4)) for m in (_ARN.match(arn) for arn in arns) if m}
    if len(places) != 1:
        raise PolicyError("the secrets must be in one account and region (one key policy each)")
    ((partition, region, account),) = places
    if not region or not account.isdigit():
        raise PolicyError("secret ARNs must name their region and account")
    return partition, region, account


def _endpoint_id(value: str) -> str:
    value = value.strip()
    if not _ENDPOINT_ID.match(value):
        raise PolicyError(f"not a VPC endpoint id: {value!r} (expected vpce-0123456789abcdef0)")
    return value


def _arn(value: str, *, services: set[str], what: str) -> str:
    value = value.strip()
    match = _ARN.match(value)
    if not match or match.group(2) not in services:
        kinds = " or ".join(sorted(services))
        raise PolicyError(f"not a {what} ARN: {value!r} (expected arn:aws:{kinds}:...)")
    return value


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))


def _one_or_list(values: list[str]) -> str | list[str]:
    # IAM reads a one-element list and a string alike; a string reads better.
    return values[0] if len(values) == 1 else values
