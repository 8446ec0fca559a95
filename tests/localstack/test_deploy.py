"""The local stack creates the template's resources at once where it can, and after what they reference."""

from __future__ import annotations

import json
from typing import Any

import boto3
import pytest

from devtools.localstack.cloudformation import Stack
from devtools.localstack.resources import deploy, references

TEMPLATE: dict[str, Any] = {
    "Resources": {
        "Subscription": {
            "Type": "AWS::SNS::Subscription",
            "Properties": {
                "TopicArn": {"Ref": "Topic"},
                "Protocol": "sqs",
                "Endpoint": {"Fn::GetAtt": ["Queue", "Arn"]},
            },
        },
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {
                "RedrivePolicy": {"deadLetterTargetArn": {"Fn::GetAtt": "DeadLetters.Arn"}, "maxReceiveCount": 3}
            },
        },
        "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Fn::Sub": "alerts of ${Queue}"}}},
        "DeadLetters": {"Type": "AWS::SQS::Queue", "Properties": {}},
    },
}


def test_references_are_the_names_of_ref_getatt_and_sub() -> None:
    properties = {
        "A": {"Ref": "Topic"},
        "B": [{"Fn::GetAtt": ["Queue", "Arn"]}, {"Fn::GetAtt": "Table.StreamArn"}],
        "C": {"Fn::Sub": "${Bucket.Arn}/x ${AWS::Region} ${!Literal}"},
        "D": {"Fn::Sub": ["${Name}-${Key}", {"Name": {"Ref": "Other"}}]},
    }
    assert references(properties) == {"Topic", "Queue", "Table", "Bucket", "Name", "Key", "Other"}


def test_every_resource_is_created_after_those_it_references(aws: None) -> None:
    # Given resources listed before those they name (a subscription first, a queue before its dead letters)
    stack = Stack("local", {}, template=TEMPLATE)

    # When the stack is deployed
    not_emulated = deploy(stack)

    # Then each was created with the others' real names and ARNs
    assert not_emulated == []
    sqs = boto3.client("sqs")
    redrive = sqs.get_queue_attributes(QueueUrl=stack.physical["Queue"].ref, AttributeNames=["RedrivePolicy"])
    assert json.loads(redrive["Attributes"]["RedrivePolicy"])["deadLetterTargetArn"] == stack.get_att(
        "DeadLetters", "Arn"
    )
    topic = boto3.client("sns").get_topic_attributes(TopicArn=stack.physical["Topic"].ref)["Attributes"]
    assert topic["DisplayName"] == f"alerts of {stack.physical['Queue'].ref}"
    [subscription] = boto3.client("sns").list_subscriptions()["Subscriptions"]
    assert subscription["Endpoint"] == stack.get_att("Queue", "Arn")


def test_resources_that_reference_each_other_in_a_circle_are_one_clear_error(aws: None) -> None:
    template = {
        "Resources": {
            "A": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "B"}}},
            "B": {"Type": "AWS::SNS::Topic", "Properties": {"DisplayName": {"Ref": "A"}}},
        }
    }
    with pytest.raises(ValueError, match="reference each other in a circle: A, B"):
        deploy(Stack("local", {}, template=template))
