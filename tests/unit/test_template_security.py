"""Least privilege in template.yaml: every function reaches only resources the template names."""

from __future__ import annotations

import json
from typing import Any

import pytest

from devtools.localstack.template import load_template, resources_of_type

# SAM policy templates and the parameter that scopes each to one resource.
SCOPED_POLICY_TEMPLATES = {
    "DynamoDBCrudPolicy": "TableName",
    "DynamoDBReadPolicy": "TableName",
    "SQSSendMessagePolicy": "QueueName",
    # Receive, delete and change visibility of one queue's messages (the re-drive of an on-failure queue).
    "SQSPollerPolicy": "QueueName",
    "SNSPublishMessagePolicy": "TopicName",
    "S3ReadPolicy": "BucketName",
}
FUNCTIONS = sorted(resources_of_type("AWS::Serverless::Function"))


def referenced_resource(value: Any) -> str | None:
    if isinstance(value, dict):
        if "Ref" in value:
            return str(value["Ref"])
        if "Fn::GetAtt" in value:
            return str(value["Fn::GetAtt"][0])
    return None


@pytest.mark.parametrize("function", FUNCTIONS)
def test_policy_templates_are_scoped_to_resources_of_this_template(function: str) -> None:
    resources = load_template()["Resources"]
    for policy in resources_of_type("AWS::Serverless::Function")[function]["Properties"]["Policies"]:
        if "Statement" in policy:
            continue
        [(name, parameters)] = policy.items()
        assert name in SCOPED_POLICY_TEMPLATES, f"{function}: unreviewed policy template {name}"
        target = referenced_resource(parameters[SCOPED_POLICY_TEMPLATES[name]])
        assert target in resources, f"{function}: {name} is not scoped to a resource of the template"


@pytest.mark.parametrize("function", FUNCTIONS)
def test_inline_statements_name_their_resources(function: str) -> None:
    for policy in resources_of_type("AWS::Serverless::Function")[function]["Properties"]["Policies"]:
        for statement in policy.get("Statement", []):
            actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
            assert all("*" not in action for action in actions), (function, actions)
            resource = statement["Resource"]
            assert resource != "*", (function, statement)
            text = json.dumps(resource)
            # A prefix ending in "*" is allowed only under a named prefix parameter (secret name, parameter path).
            assert "Prefix}" in text or "Path}" in text or "*" not in text, (function, text)


def test_no_function_has_a_role_or_managed_policy_outside_the_template() -> None:
    for function, resource in resources_of_type("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        assert "Role" not in properties, function
        assert all(isinstance(policy, dict) for policy in properties["Policies"]), function


def test_buckets_block_public_access_and_are_encrypted() -> None:
    for name, bucket in resources_of_type("AWS::S3::Bucket").items():
        block = bucket["Properties"]["PublicAccessBlockConfiguration"]
        assert all(block[key] is True for key in block), name
        assert "BucketEncryption" in bucket["Properties"], name
