"""IAM and STS as real clients ask before they train (the SageMaker Python SDK v3 validates its role with
iam:SimulatePrincipalPolicy and iam:GetRole, and reads sts:GetCallerIdentity).

- The placeholder role (`PLACEHOLDER_ROLE_ARN`) is put into moto's IAM whenever the server starts or forgets its state
  (`seed`), trusting `sagemaker.amazonaws.com` as a SageMaker execution role does; roles created through the local IAM
  are moto's own. An unknown role gets IAM's NoSuchEntity.
- SimulatePrincipalPolicy (moto lacks it) answers as IAM does for a principal that may do everything: `allowed` for
  each action and resource asked, for the local account's roles and users; NoSuchEntity for anything else.
- GetCallerIdentity names the local account and an IAM user whose unique id is derived from the caller's access key
  (only the server's own key pair gets past access.py, so every client of one server is the same user).
patch.py installs `simulate_principal_policy` and `get_caller_identity`, answered so only while a server serves.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from moto.core.responses import ActionResult
from moto.iam.exceptions import InvalidInput, NotFoundException
from moto.iam.models import IAMBackend, iam_backends

from handlers.local import LOCAL_ACCOUNT_ID, PLACEHOLDER_ROLE_ARN

PARTITION = "aws"
#: The IAM user every client of a local SageMaker is (its key pair is the only one it lets in).
CALLER_USER_NAME = "local-sagemaker"
TRUST_POLICY = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "sagemaker.amazonaws.com"},
                   "Action": "sts:AssumeRole"}],
}
_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def _backend(account: str = LOCAL_ACCOUNT_ID) -> IAMBackend:
    backend: IAMBackend = iam_backends[account][PARTITION]
    return backend


def seed() -> None:
    """The placeholder role in the local IAM, unless it is there already (a restart keeping moto's state)."""
    backend = _backend()
    name = PLACEHOLDER_ROLE_ARN.rpartition("/")[2]
    if any(role.name == name for role in backend.get_roles()):
        return
    backend.create_role(
        role_name=name, assume_role_policy_document=json.dumps(TRUST_POLICY), path="/",
        permissions_boundary=None, description="The local SageMaker's execution role (its jobs may do everything)",
        tags=[], max_session_duration="3600")


def caller_identity(access_key_id: str, account: str = LOCAL_ACCOUNT_ID) -> dict[str, str]:
    """GetCallerIdentity's answer for `access_key_id`: an IAM user's unique id (AIDA + 17 characters) derived from
    the key, so the same key pair always is the same user."""
    digest = hashlib.sha256(access_key_id.encode()).digest()
    unique = "".join(_ID_ALPHABET[byte % len(_ID_ALPHABET)] for byte in digest[:17])
    return {"UserId": f"AIDA{unique}", "Account": account,
            "Arn": f"arn:{PARTITION}:iam::{account}:user/{CALLER_USER_NAME}"}


def _principal_exists(arn: str, account: str) -> bool:
    """Whether `arn` names a role or user of the local account's IAM (the caller's own user included)."""
    backend = _backend(account)
    parts = arn.split(":", 5)
    if len(parts) != 6 or parts[0] != "arn" or parts[2] != "iam":
        raise InvalidInput(f"Invalid Entity Arn: {arn} does not clear basic validation.")
    if parts[4] != account:
        return False
    kind, _, path_and_name = parts[5].partition("/")
    if kind == "role":
        return any(role.arn == arn for role in backend.get_roles())
    if kind == "user":
        name = path_and_name.rpartition("/")[2]
        return name == CALLER_USER_NAME or name in backend.users
    if kind == "group":
        return any(group.arn == arn for group in backend.groups.values())
    raise InvalidInput(f"Invalid Entity Arn: {arn} does not clear basic validation.")


def simulate(params: dict[str, Any], account: str = LOCAL_ACCOUNT_ID) -> dict[str, Any]:
    """SimulatePrincipalPolicy's result: every action allowed on every resource asked (`*` when none)."""
    source = str(params.get("PolicySourceArn") or "")
    actions = [str(action) for action in params.get("ActionNames") or []]
    if not source:
        raise InvalidInput("PolicySourceArn is required.")
    if not actions:
        raise InvalidInput("ActionNames must name at least one action.")
    if not _principal_exists(source, account):
        raise NotFoundException(f"The entity {source} cannot be found.")
    resources = [str(resource) for resource in params.get("ResourceArns") or []] or ["*"]
    results = []
    for action in actions:
        for resource in resources:
            results.append({
                "EvalActionName": action, "EvalResourceName": resource, "EvalDecision": "allowed",
                "MatchedStatements": [], "MissingContextValues": [],
            })
    return {"EvaluationResults": results, "IsTruncated": False}


def simulate_principal_policy(response: Any) -> ActionResult:
    """moto's IamResponse gets this action (it has none)."""
    params = {
        "PolicySourceArn": response._get_param("PolicySourceArn"),
        "ActionNames": response._get_param("ActionNames", []),
        "ResourceArns": response._get_param("ResourceArns", []),
    }
    return ActionResult(simulate(params, response.current_account))


def get_role(response: Any) -> ActionResult:
    """moto's GetRole with IAM's words for an unknown role."""
    name = str(response._get_param("RoleName"))
    try:
        role = response.backend.get_role(name)
    except NotFoundException:
        raise NotFoundException(f"The role with name {name} cannot be found.") from None
    return ActionResult({"Role": role})


def get_caller_identity(response: Any) -> ActionResult:
    return ActionResult(caller_identity(response.get_access_key(), response.current_account))

