"""The local stack reads template.yaml as CloudFormation would: parameters, conditions, intrinsics."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localstack.cloudformation import ACCOUNT_ID, REGION, PhysicalResource, Stack, TemplateError

TEMPLATE: dict[str, Any] = {
    "Parameters": {
        "Stage": {"Type": "String", "Default": "dev", "AllowedValues": ["dev", "prod"]},
        "Days": {"Type": "Number", "Default": 400, "MinValue": 1, "MaxValue": 3660},
        "Prefix": {"Type": "String", "Default": "replyclock/", "AllowedPattern": "^[a-z/]+$"},
        "Audiences": {"Type": "CommaDelimitedList", "Default": "a,b"},
    },
    "Conditions": {
        "IsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "IsDev": {"Fn::Not": [{"Condition": "IsProd"}]},
    },
    "Resources": {
        "Queue": {"Type": "AWS::SQS::Queue", "Properties": {}},
        "ProdOnly": {"Type": "AWS::SNS::Topic", "Condition": "IsProd", "Properties": {}},
    },
}


def stack(**overrides: str) -> Stack:
    created = Stack("local", overrides, template=TEMPLATE)
    created.physical["Queue"] = PhysicalResource(
        ref="https://sqs/queue", attributes={"Arn": "arn:aws:sqs:us-east-1:123456789012:local-Queue"}
    )
    return created


def test_parameters_take_their_defaults_unless_overridden() -> None:
    assert stack().parameters == {"Stage": "dev", "Days": "400", "Prefix": "replyclock/", "Audiences": "a,b"}
    assert stack(Days="2288").parameters["Days"] == "2288"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"Stage": "qa"}, "is not one of"),
        ({"Days": "0"}, "below its MinValue"),
        ({"Days": "9999"}, "above its MaxValue"),
        ({"Days": "many"}, "not a number"),
        ({"Prefix": "UP"}, "does not match"),
        ({"Nope": "1"}, "unknown template parameter"),
    ],
)
def test_overrides_are_checked_against_the_parameter_constraints(override: dict[str, str], message: str) -> None:
    with pytest.raises(TemplateError, match=message):
        stack(**override)


def test_intrinsics_resolve_to_parameters_pseudo_parameters_and_physical_names() -> None:
    resolved = stack(Stage="prod").resolve(
        {
            "Name": {"Ref": "Queue"},
            "Arn": {"Fn::GetAtt": ["Queue", "Arn"]},
            "Short": {"Fn::GetAtt": "Queue.Arn"},
            "Sub": {
                "Fn::Sub": "arn:${AWS::Partition}:x:${AWS::Region}:${AWS::AccountId}:${Prefix}* ${Queue.Arn} ${!Raw}"
            },
            "SubVars": {"Fn::Sub": ["${Greeting}, ${AWS::StackName}", {"Greeting": {"Ref": "Stage"}}]},
            "Join": {"Fn::Join": ["-", ["a", {"Ref": "Days"}]]},
            "Split": {"Fn::Split": [",", {"Ref": "Stage"}]},
            "Select": {"Fn::Select": [1, {"Ref": "Audiences"}]},
            "If": {"Fn::If": ["IsProd", "big", "small"]},
            "Gone": {"Fn::If": ["IsDev", "kept", {"Ref": "AWS::NoValue"}]},
            "List": ["x", {"Ref": "AWS::NoValue"}],
        }
    )
    assert resolved == {
        "Name": "https://sqs/queue",
        "Arn": "arn:aws:sqs:us-east-1:123456789012:local-Queue",
        "Short": "arn:aws:sqs:us-east-1:123456789012:local-Queue",
        "Sub": f"arn:aws:x:{REGION}:{ACCOUNT_ID}:replyclock/* arn:aws:sqs:us-east-1:123456789012:local-Queue ${{Raw}}",
        "SubVars": "prod, local",
        "Join": "a-400",
        "Split": ["prod"],
        "Select": "b",
        "If": "big",
        "List": ["x"],
    }


def test_conditional_resources_follow_their_condition() -> None:
    assert not stack().is_created("ProdOnly")
    assert stack(Stage="prod").is_created("ProdOnly")


def test_an_attribute_the_local_stack_does_not_emulate_is_an_error_not_a_guess() -> None:
    with pytest.raises(TemplateError, match="Queue.QueueName"):
        stack().resolve({"Fn::GetAtt": ["Queue", "QueueName"]})
    with pytest.raises(TemplateError, match="unknown resource or parameter"):
        stack().resolve({"Ref": "Missing"})
