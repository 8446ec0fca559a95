"""Every function logs to a log group the template declares, with a retention and a KMS key CloudWatch Logs may use."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localstack.template import load_template, resources_of_type

RESOURCES = load_template()["Resources"]
FUNCTIONS = sorted(resources_of_type("AWS::Serverless::Function"))
LOG_GROUPS = sorted(resources_of_type("AWS::Logs::LogGroup"))


def referenced(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise AssertionError(f"{value!r} does not name a resource of this template")


@pytest.mark.parametrize("function", FUNCTIONS)
def test_every_function_logs_to_a_declared_log_group(function: str) -> None:
    properties = RESOURCES[function]["Properties"]
    group = referenced(properties["LoggingConfig"]["LogGroup"])
    assert RESOURCES[group]["Type"] == "AWS::Logs::LogGroup"
    # One group per function: their logs never mix.
    others = [name for name in FUNCTIONS if name != function]
    assert all(referenced(RESOURCES[other]["Properties"]["LoggingConfig"]["LogGroup"]) != group for other in others)


@pytest.mark.parametrize("group", LOG_GROUPS)
def test_every_log_group_has_a_retention_and_a_kms_key_cloudwatch_logs_may_use(group: str) -> None:
    properties = RESOURCES[group]["Properties"]
    assert properties.get("RetentionInDays"), f"{group} keeps its logs forever"
    key = RESOURCES[referenced(properties["KmsKeyId"])]
    assert key["Type"] == "AWS::KMS::Key" and key["Properties"]["EnableKeyRotation"] is True
    logs_statements = [
        statement
        for statement in key["Properties"]["KeyPolicy"]["Statement"]
        if "logs." in str(statement.get("Principal", {}).get("Service", ""))
    ]
    assert logs_statements, f"{group}'s key does not let CloudWatch Logs use it"
    for statement in logs_statements:
        actions = set(statement["Action"])
        assert {"kms:Encrypt*", "kms:Decrypt*", "kms:GenerateDataKey*"} <= actions
        # Only log groups of this account and Region, through the encryption context CloudWatch Logs sends.
        assert "kms:EncryptionContext:aws:logs:arn" in statement["Condition"]["ArnLike"]


def test_the_log_retention_is_a_parameter_with_a_finite_default() -> None:
    parameter = load_template()["Parameters"]["LogRetentionInDays"]
    assert 0 < parameter["Default"] <= 400
