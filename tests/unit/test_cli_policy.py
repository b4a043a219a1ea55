"""The policy generator (rotator.iam_policies) and ``rotator policy``: valid IAM JSON, statements
to merge rather than replacements, the merge itself, and the operator actions matching the
CLI's own calls. What each policy allows and denies is evaluated request by request with a
real policy evaluator in tests/template/test_decisions.py."""

from __future__ import annotations

import ast
import io
import json
from pathlib import Path
from typing import Any

import pytest
from moto.iam.policy_validation import IAMPolicyDocumentValidator

from rotator import iam_policies
from tests.support.aws import create_secret
from tests.support.cli import Cli

ACCOUNT = "123456789012"
VPCE = "vpce-0a1b2c3d4e5f60718"
APP_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:app-db-AbCdEf"
ADMIN_SECRET = f"arn:aws:secretsmanager:us-east-1:{ACCOUNT}:secret:rds-admin-QwErTy"
FUNCTION_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/rotator-RotationFunctionRole-AbC123"
APP_ROLE = f"arn:aws:iam::{ACCOUNT}:role/orders-service"
OPERATOR = f"arn:aws:iam::{ACCOUNT}:role/aws-reserved/sso.amazonaws.com/*/AWSReservedSSO_DBA_*"
BREAK_GLASS = f"arn:aws:iam::{ACCOUNT}:role/break-glass"
SRC = Path(__file__).resolve().parents[2] / "src" / "rotator"
# What an endpoint shared with other teams may already carry.
SHARED_ENDPOINT_POLICY = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "TeamB", "Effect": "Allow", "Principal": "*", "Action": "secretsmanager:*", "Resource": "*"},
        {
            "Sid": "RotationFunctionRotatesSecrets",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "x:y",
            "Resource": "*",
        },
    ],
}


def valid_iam(policy: dict[str, Any]) -> bool:
    IAMPolicyDocumentValidator(json.dumps(policy)).validate()  # raises MalformedPolicyDocument
    return True


# -- the generator ----------------------------------------------------------------


@pytest.mark.parametrize(
    "policy",
    [
        iam_policies.resource_policy([VPCE], [BREAK_GLASS]),
        iam_policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET], [APP_ROLE], [FUNCTION_ROLE], [OPERATOR]),
        iam_policies.endpoint_policy([APP_SECRET], shared=True),
        iam_policies.kms_key_policy([APP_SECRET], [ADMIN_SECRET], [FUNCTION_ROLE]),
    ],
    ids=["resource", "endpoint", "endpoint-shared", "kms"],
)
def test_generated_policies_are_valid_iam_json(policy: dict[str, Any]) -> None:
    """Every generated policy passes an IAM policy grammar check (moto's validator)."""
    assert valid_iam(policy)


def test_the_lock_has_no_forward_access_exemption() -> None:
    """Every statement of the lock exempts break-glass principals and service principals acting as
    themselves, never a service acting for a caller (aws:ViaAWSService); what each denies is
    evaluated in tests/template/test_decisions.py."""
    lock = iam_policies.resource_policy([VPCE], [BREAK_GLASS], writers=[FUNCTION_ROLE], lock_managers=[APP_ROLE])
    assert [s["Sid"] for s in lock["Statement"]] == list(iam_policies.LOCK_SIDS)
    for deny in lock["Statement"]:
        assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
        assert deny["Condition"]["BoolIfExists"] == {"aws:PrincipalIsAWSService": "false"}
        assert BREAK_GLASS in json.dumps(deny["Condition"]["ArnNotLike"])
        assert "ViaAWSService" not in json.dumps(deny)
    outside = lock["Statement"][0]
    assert outside["Condition"]["StringNotEquals"] == {"aws:SourceVpce": VPCE}
    assert set(outside["Action"]) == {*iam_policies.LOCK_READ_ACTIONS, *iam_policies.LOCK_WRITE_ACTIONS}
    assert not set(iam_policies.LOCK_OPEN_ACTIONS) & set(json.dumps(lock).split('"'))


def test_the_lock_without_writers_or_managers_has_fewer_statements() -> None:
    """Without --writer the lock does not restrict writes through the endpoint; without
    --lock-manager only break-glass may change it (no CloudFormation statement)."""
    lock = iam_policies.resource_policy([VPCE], [BREAK_GLASS])
    assert [s["Sid"] for s in lock["Statement"]] == ["DenyOutsideEndpoint", "DenyLockChangesByOthers"]
    (changes,) = [s for s in lock["Statement"] if s["Sid"] == "DenyLockChangesByOthers"]
    assert changes["Condition"]["ArnNotLike"] == {"aws:PrincipalArn": BREAK_GLASS}


def test_operator_actions_are_exactly_the_cli_calls() -> None:
    """The operator statements allow exactly the Secrets Manager calls the CLI and the adapter it
    shares with the function make (read from the code), so an operator in the VPC is neither
    blocked nor given more."""
    calls: set[str] = set()
    for path in [SRC / "secret_store.py", *sorted((SRC / "cli").glob("*.py"))]:
        for node in ast.walk(ast.parse(path.read_text())):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in ("_call", "call")
                and node.args
                and isinstance(node.args[0], ast.Constant)
            ):
                calls.add(f"secretsmanager:{node.args[0].value}")
    assert "secretsmanager:RotateSecret" in calls  # the scan found the operator calls
    allowed = {*iam_policies.OPERATOR_SECRET_ACTIONS, *iam_policies.OPERATOR_ACCOUNT_ACTIONS}
    assert calls == allowed
    assert set(iam_policies.OPERATOR_ADMIN_ACTIONS) <= allowed


def test_kms_statements_name_the_stack_roles_before_they_exist() -> None:
    """``stack_role_pattern`` gives the path of the roles a stack creates; the key statements
    allow them only via Secrets Manager, only for the listed secrets, and encryption only for
    the rotated ones."""
    pattern = iam_policies.stack_role_pattern(APP_SECRET, "rotator")
    assert pattern == f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/*"
    rotated, admin = iam_policies.kms_key_policy([APP_SECRET], [ADMIN_SECRET], [pattern])["Statement"]
    assert rotated["Principal"] == {"AWS": f"arn:aws:iam::{ACCOUNT}:root"}
    assert rotated["Action"] == ["kms:Decrypt", "kms:GenerateDataKey"] and admin["Action"] == "kms:Decrypt"
    assert rotated["Condition"] == {
        "ArnLike": {"aws:PrincipalArn": pattern},
        "StringEquals": {"kms:ViaService": "secretsmanager.us-east-1.amazonaws.com", "kms:CallerAccount": ACCOUNT},
        "StringLike": {"kms:EncryptionContext:SecretARN": APP_SECRET},
    }
    assert admin["Condition"]["StringLike"] == {"kms:EncryptionContext:SecretARN": ADMIN_SECRET}


def test_merge_keeps_other_statements_and_replaces_its_own() -> None:
    """Merging adds rotator's statements, replaces an earlier copy of them (same Sid), keeps every
    other statement, and merging twice changes nothing."""
    ours = iam_policies.endpoint_policy([APP_SECRET], function_roles=[FUNCTION_ROLE])
    merged = iam_policies.merge(SHARED_ENDPOINT_POLICY, ours)
    sids = [s.get("Sid") for s in merged["Statement"]]
    assert sids == ["TeamB", "RotationFunctionRotatesSecrets", "RotationFunctionGeneratesPasswords"]
    assert merged["Statement"][1] == ours["Statement"][0]
    assert iam_policies.merge(merged, ours) == merged
    assert merged["Version"] == "2012-10-17"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: iam_policies.resource_policy([], [BREAK_GLASS]), "endpoint"),
        (lambda: iam_policies.resource_policy(["vpc-0123456789abcdef0"], [BREAK_GLASS]), "vpc-0123456789abcdef0"),
        (lambda: iam_policies.resource_policy([VPCE], []), "break-glass"),
        (lambda: iam_policies.resource_policy([VPCE], ["arn:aws:sts::123456789012:assumed-role/x/y"]), "assumed-role"),
        (lambda: iam_policies.endpoint_policy([APP_ROLE]), "secret"),
        (lambda: iam_policies.endpoint_policy([APP_SECRET], readers=[APP_SECRET]), "reader"),
        (lambda: iam_policies.endpoint_policy([APP_SECRET], operators=[APP_SECRET]), "operator"),
        (lambda: iam_policies.kms_key_policy([APP_SECRET], [], []), "role"),
        (
            lambda: iam_policies.kms_key_policy(
                [APP_SECRET, APP_SECRET.replace(ACCOUNT, "210987654321")], [], [APP_ROLE]
            ),
            "one account",
        ),
        (lambda: iam_policies.stack_role_pattern(APP_SECRET, "not a stack"), "stack"),
        (
            lambda: iam_policies.merge({"Statement": "nope"}, iam_policies.resource_policy([VPCE], [BREAK_GLASS])),
            "Statement",
        ),
    ],
)
def test_malformed_arguments_are_refused(call: Any, message: str) -> None:
    """No endpoint, a VPC id for an endpoint, a session ARN, a role for a secret (or the reverse),
    secrets in two accounts, a bad stack name or a policy without statements are refused by name."""
    with pytest.raises(iam_policies.PolicyError, match=message):
        call()


# -- the command -----------------------------------------------------------------


def test_policy_prints_statements_to_merge_by_default(cli: Cli) -> None:
    """Without --merge or --replace the command prints only rotator's statements (a JSON list) and
    says on stderr how to get a complete policy: a shared endpoint is never replaced by accident."""
    run = cli("policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET)
    assert run.code == 0
    assert run.json() == iam_policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET])["Statement"]
    assert "--merge" in run.err and "--replace" in run.err


def test_policy_replace_prints_the_generator_document(cli: Cli) -> None:
    """--replace prints exactly the generator's complete document."""
    run = cli(
        "policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET, "--readers", APP_ROLE,
        "--function-role", FUNCTION_ROLE, "--operators", OPERATOR, "--replace",
    )  # fmt: skip
    assert run.code == 0, run.err
    expected = iam_policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET], [APP_ROLE], [FUNCTION_ROLE], [OPERATOR])
    assert run.json() == expected
    run = cli("policy", "resource", "--endpoint", VPCE, "--break-glass", BREAK_GLASS, "--replace")
    assert run.json() == iam_policies.resource_policy([VPCE], [BREAK_GLASS])


def test_policy_merge_adds_to_the_policy_in_place(cli: Cli, tmp_path: Path) -> None:
    """--merge FILE prints the endpoint's current policy with rotator's statements merged in."""
    existing = tmp_path / "endpoint.json"
    existing.write_text(json.dumps(SHARED_ENDPOINT_POLICY))
    run = cli("policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET, "--merge", str(existing))
    assert run.code == 0, run.err
    ours = iam_policies.endpoint_policy([APP_SECRET], [ADMIN_SECRET])
    assert run.json() == iam_policies.merge(SHARED_ENDPOINT_POLICY, ours)
    assert run.json()["Statement"][0]["Sid"] == "TeamB"


@pytest.mark.parametrize("text", ["", "None\n", "null"])
def test_policy_merge_with_no_policy_in_place(cli: Cli, tmp_path: Path, text: str) -> None:
    """An empty file, or what the AWS CLI prints for a secret without a policy, is no policy:
    the merge is rotator's complete policy."""
    existing = tmp_path / "policy.json"
    existing.write_text(text)
    run = cli("policy", "resource", "--endpoint", VPCE, "--break-glass", BREAK_GLASS, "--merge", str(existing))
    assert run.code == 0, run.err
    assert run.json() == iam_policies.resource_policy([VPCE], [BREAK_GLASS])


def test_policy_merge_reads_stdin_and_warns_about_denies(cli: Cli) -> None:
    """--merge - reads the policy in place from stdin; a Deny statement in it is pointed out."""
    existing = {"Version": "2012-10-17", "Statement": [{"Sid": "NoDelete", "Effect": "Deny", "Principal": "*",
                "Action": "kms:ScheduleKeyDeletion", "Resource": "*"}]}  # fmt: skip
    run = cli(
        "policy", "kms", "--secrets", APP_SECRET, "--stack", "rotator", "--merge", "-", stdin=json.dumps(existing)
    )
    assert run.code == 0, run.err
    assert [s["Sid"] for s in run.json()["Statement"]] == ["NoDelete", "RotatorEncryptsRotatedSecrets"]
    assert "Deny statement (NoDelete)" in run.err


def test_policy_warns_when_the_merged_policy_is_too_large(cli: Cli, tmp_path: Path) -> None:
    """A merged endpoint policy over AWS's 20,480 characters is printed with a warning."""
    big = {"Version": "2012-10-17", "Statement": [{"Sid": f"S{n}", "Effect": "Allow", "Principal": "*",
           "Action": "secretsmanager:GetSecretValue", "Resource": APP_SECRET} for n in range(200)]}  # fmt: skip
    existing = tmp_path / "big.json"
    existing.write_text(json.dumps(big))
    run = cli("policy", "endpoint", "--secrets", APP_SECRET, "--merge", str(existing))
    assert run.code == 0
    assert "20480 at most" in run.err


def test_policy_merge_rejects_a_file_that_is_not_a_policy(cli: Cli, tmp_path: Path) -> None:
    """A --merge file that is not JSON, or not a policy, is a one-line usage error (exit 2)."""
    for text in ("{not json", "[1, 2]"):
        existing = tmp_path / "bad.json"
        existing.write_text(text)
        run = cli("policy", "resource", "--endpoint", VPCE, "--break-glass", BREAK_GLASS, "--merge", str(existing))
        assert run.code == 2 and run.out == ""
        assert "--merge" in run.err and "Traceback" not in run.err


def test_policy_kms_by_role_or_stack(cli: Cli) -> None:
    """``policy kms`` names the role, or the stack's role path when the role does not exist yet;
    one of the two is required."""
    by_stack = cli("policy", "kms", "--secrets", APP_SECRET, "--stack", "rotator-prod", "--replace")
    assert by_stack.code == 0, by_stack.err
    pattern = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator-prod/*"
    assert by_stack.json() == iam_policies.kms_key_policy([APP_SECRET], [], [pattern])
    by_role = cli("policy", "kms", "--secrets", APP_SECRET, "--role", FUNCTION_ROLE, "--replace")
    assert by_role.json() == iam_policies.kms_key_policy([APP_SECRET], [], [FUNCTION_ROLE])
    assert cli("policy", "kms", "--secrets", APP_SECRET).code == 2


def test_policy_endpoint_warns_when_admin_secrets_are_missing(cli: Cli) -> None:
    """Without admin secrets the operator is told that alternating-user rotation would be blocked."""
    run = cli("policy", "endpoint", "--secrets", APP_SECRET)
    assert run.code == 0
    assert "admin" in run.err and "--resolve-admins" in run.err


def test_policy_endpoint_resolves_admin_secrets_from_masterarn(cli: Cli, aws: Any) -> None:
    """--resolve-admins reads each secret's masterarn and adds the admin secret's ARN."""
    admin_arn = create_secret(aws, "rds-admin", {"username": "admin", "password": "pw-admin-123456"})
    app_arn = create_secret(
        aws,
        "app-db",
        {"host": "db.internal", "username": "app", "password": "pw-app-1234567", "masterarn": "rds-admin"},
    )
    run = cli("policy", "endpoint", "--secrets", app_arn, "--resolve-admins", "--replace")
    assert run.code == 0, run.err
    statements = {s["Sid"]: s for s in run.json()["Statement"]}
    assert statements["RotationFunctionReadsAdminSecrets"]["Resource"] == admin_arn
    assert run.leaks(["pw-admin-123456", "pw-app-1234567"]) == []


def test_policy_with_a_malformed_endpoint_id_is_a_one_line_usage_error(cli: Cli) -> None:
    """A bad endpoint id exits 2 with one line naming it, and no traceback."""
    run = cli("policy", "resource", "--endpoint", "vpce-nothex", "--break-glass", BREAK_GLASS)
    assert run.code == 2
    assert run.out == ""
    assert run.err.count("\n") == 1 and "vpce-nothex" in run.err
    assert "Traceback" not in run.err


@pytest.mark.parametrize("command", ["policy resource --replace", "lock app-db"])
def test_a_lock_without_break_glass_is_refused(cli: Cli, command: str) -> None:
    """Without a break-glass principal nobody could ever change the lock (nor read the secret when
    the endpoint is down): a one-line usage error, before any AWS call."""
    run = cli(*command.split(), "--endpoint", VPCE)
    assert run.code == 2
    assert run.out == "" and run.err.count("\n") == 1 and "break-glass" in run.err


def test_policy_output_is_plain_json_for_scripts(cli: Cli) -> None:
    """stdout holds only the JSON document; the notes go to stderr."""
    run = cli("policy", "resource", "--endpoint", VPCE, "--break-glass", BREAK_GLASS)
    assert json.load(io.StringIO(run.out)) == iam_policies.resource_policy([VPCE], [BREAK_GLASS])["Statement"]


CANARY_ROLE = f"arn:aws:iam::{ACCOUNT}:role/rotator/rotator/rotator-CanaryFunctionRole-GhI789"


def test_policy_endpoint_lets_the_canary_only_read(cli: Cli) -> None:
    """--canary-role adds statements that let the readiness check read the secrets (and, with
    --canary-lists, list them): valid IAM, exactly the generator's, and no action that writes."""
    run = cli(
        "policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET,
        "--function-role", FUNCTION_ROLE, "--canary-role", CANARY_ROLE, "--canary-lists", "--replace",
    )  # fmt: skip
    assert run.code == 0, run.err
    expected = iam_policies.endpoint_policy(
        [APP_SECRET], [ADMIN_SECRET], (), [FUNCTION_ROLE], canary_roles=[CANARY_ROLE], canary_lists=True
    )
    assert run.json() == expected and valid_iam(expected)
    canary = [s for s in expected["Statement"] if s["Condition"]["ArnLike"]["aws:PrincipalArn"] == CANARY_ROLE]
    assert [s["Sid"] for s in canary] == ["CanaryReadsRotatedSecrets", "CanaryReadsAdminSecrets", "CanaryListsSecrets"]
    actions = {a for s in canary for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}
    assert actions == {*iam_policies.CANARY_SECRET_ACTIONS, *iam_policies.CANARY_ACCOUNT_ACTIONS}
    assert not actions & {"secretsmanager:PutSecretValue", "secretsmanager:UpdateSecretVersionStage"}


def test_policy_canary_lists_needs_the_canary_role(cli: Cli) -> None:
    """--canary-lists without --canary-role is a usage error (exit 2), not a statement for anyone."""
    run = cli("policy", "endpoint", "--secrets", APP_SECRET, "--admin-secrets", ADMIN_SECRET, "--canary-lists")
    assert run.code == 2
    assert "--canary-lists needs --canary-role" in run.err
