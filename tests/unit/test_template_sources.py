"""template.yaml: one ingest tick polls every source (no schedule per source); the API may only read credentials."""

from __future__ import annotations

import json

from devtools.localstack.template import load_template


def test_ingest_has_one_schedule_the_every_minute_tick_naming_no_source() -> None:
    events = load_template()["Resources"]["IngestFunction"]["Properties"]["Events"]

    assert list(events) == ["DueSourcesTick"]
    tick = events["DueSourcesTick"]
    assert tick["Type"] == "ScheduleV2"
    assert tick["Properties"]["ScheduleExpression"] == "rate(1 minute)"
    assert json.loads(tick["Properties"]["Input"]) == {}
    assert tick["Properties"]["RetryPolicy"]["MaximumRetryAttempts"] == 0


def test_no_parameter_configures_a_source() -> None:
    parameters = load_template()["Parameters"]

    assert not [name for name in parameters if "Source" in name and name != "CredentialsSecretPrefix"]


def test_the_api_function_may_read_credentials_under_the_prefixes_and_nothing_else_of_them() -> None:
    function = load_template()["Resources"]["ApiFunction"]["Properties"]
    statements = [statement for policy in function["Policies"] for statement in policy.get("Statement", [])]
    # Its table access is tested in test_template_api_hardening.py.
    statements = [statement for statement in statements if "dynamodb:" not in json.dumps(statement["Action"])]

    assert {json.dumps(statement["Action"]) for statement in statements} == {
        '"secretsmanager:GetSecretValue"',
        '"ssm:GetParameter"',
    }
    resources = json.dumps([statement["Resource"] for statement in statements])
    assert "${CredentialsSecretPrefix}*" in resources and "${CredentialsParameterPath}*" in resources
    variables = function["Environment"]["Variables"]
    assert variables["CREDENTIALS_SECRET_PREFIX"] == {"Ref": "CredentialsSecretPrefix"}
    assert variables["CREDENTIALS_PARAMETER_PATH"] == {"Ref": "CredentialsParameterPath"}
