"""Alarm actions and SLA alerts can really reach their topic: its KMS key grants CloudWatch and the sweeper."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localstack.template import load_template, resources_of_type

RESOURCES = load_template()["Resources"]
ALARMS = sorted(resources_of_type("AWS::CloudWatch::Alarm"))
ENVELOPE_ACTIONS = {"kms:Decrypt", "kms:GenerateDataKey*"}


def referenced(value: Any) -> str:
    if isinstance(value, dict) and "Ref" in value:
        return str(value["Ref"])
    if isinstance(value, dict) and "Fn::GetAtt" in value:
        target = value["Fn::GetAtt"]
        return str(target[0] if isinstance(target, list) else target.split(".")[0])
    raise AssertionError(f"{value!r} does not name a resource of this template")


def as_list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def topic_key(topic: str) -> dict[str, Any]:
    """The customer-managed key that encrypts a topic of this template."""
    key_id = RESOURCES[topic]["Properties"].get("KmsMasterKeyId")
    assert key_id is not None, f"{topic} is not encrypted"
    assert not (isinstance(key_id, str) and key_id.startswith("alias/aws/")), (
        f"{topic} uses an AWS-managed key ({key_id}), whose policy cannot grant CloudWatch"
    )
    key = RESOURCES[referenced(key_id)]
    assert key["Type"] == "AWS::KMS::Key"
    return key


def grants(key: dict[str, Any], service: str) -> set[str]:
    actions: set[str] = set()
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        principals = as_list(statement.get("Principal", {}).get("Service", []))
        if statement["Effect"] == "Allow" and service in principals:
            actions |= set(as_list(statement["Action"]))
    return actions


def test_there_are_alarms_and_every_one_has_an_action() -> None:
    assert len(ALARMS) >= 13
    assert all(resources_of_type("AWS::CloudWatch::Alarm")[name]["Properties"].get("AlarmActions") for name in ALARMS)


@pytest.mark.parametrize("alarm", ALARMS)
def test_every_alarm_action_topic_key_lets_cloudwatch_publish(alarm: str) -> None:
    for action in resources_of_type("AWS::CloudWatch::Alarm")[alarm]["Properties"]["AlarmActions"]:
        topic = referenced(action)
        assert RESOURCES[topic]["Type"] == "AWS::SNS::Topic"
        key = topic_key(topic)
        assert ENVELOPE_ACTIONS <= grants(key, "cloudwatch.amazonaws.com"), alarm
        assert ENVELOPE_ACTIONS <= grants(key, "sns.amazonaws.com"), alarm


def test_the_alerts_key_is_rotated_and_its_service_grants_are_confined_to_this_account() -> None:
    key = topic_key("AlertsTopic")
    assert key["Properties"]["EnableKeyRotation"] is True
    for statement in key["Properties"]["KeyPolicy"]["Statement"]:
        if "Service" in statement.get("Principal", {}):
            assert statement["Condition"]["StringEquals"]["aws:SourceAccount"] == {"Ref": "AWS::AccountId"}


def test_the_sweeper_may_use_the_alerts_topic_key() -> None:
    key_name = referenced(RESOURCES["AlertsTopic"]["Properties"]["KmsMasterKeyId"])
    sweeper = resources_of_type("AWS::Serverless::Function")["SweepFunction"]["Properties"]
    actions = {
        action
        for policy in sweeper["Policies"]
        for statement in policy.get("Statement", [])
        if referenced(statement["Resource"]) == key_name
        for action in as_list(statement["Action"])
    }
    assert {"kms:Decrypt", "kms:GenerateDataKey"} <= actions
