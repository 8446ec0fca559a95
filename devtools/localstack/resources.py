"""Create the template's tables, queues, topics and buckets in the emulator, from their own definitions.

Each creator reads the resource's Properties (resolved by the Stack) and calls the API
CloudFormation would call; it records what Ref and Fn::GetAtt return. Resources that the
local stack runs rather than creates (functions, the HTTP API, the layer) get the names
and ARNs the functions would see on AWS. Anything else is reported as not emulated.
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import Any, cast

import boto3

from devtools.localstack.cloudformation import PhysicalResource, Stack
from devtools.localstack.template import create_table_arguments

# Properties a creator reads; others are recorded as ignored so nothing is dropped silently.
_QUEUE_ATTRIBUTES = {
    "DelaySeconds": "DelaySeconds",
    "MaximumMessageSize": "MaximumMessageSize",
    "MessageRetentionPeriod": "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds": "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout": "VisibilityTimeout",
    "SqsManagedSseEnabled": "SqsManagedSseEnabled",
    "KmsMasterKeyId": "KmsMasterKeyId",
    "FifoQueue": "FifoQueue",
    "ContentBasedDeduplication": "ContentBasedDeduplication",
}
_TOPIC_ATTRIBUTES = {"DisplayName": "DisplayName", "KmsMasterKeyId": "KmsMasterKeyId", "FifoTopic": "FifoTopic"}


# boto3's default session does not create clients safely from several threads at once.
_CLIENT_LOCK = threading.Lock()


def _client(service: str) -> Any:
    with _CLIENT_LOCK:
        return boto3.client(service)  # type: ignore[call-overload]


def _attribute_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value) if isinstance(value, dict | list) else str(value)


def create_table(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    name = str(properties.get("TableName") or stack.physical_name(logical_id))
    # The same conversion the tests use (devtools.localstack.template), applied to the resolved properties.
    arguments = create_table_arguments(logical_id, name)
    dynamodb = _client("dynamodb")
    try:
        description: Any = dynamodb.create_table(**stack.resolve(arguments))["TableDescription"]
        created = True
    except dynamodb.exceptions.ResourceInUseException:
        # Kept from an earlier run (`replyclock run --data DIR`): the same table, with its stream.
        description = dynamodb.describe_table(TableName=name)["Table"]
        created = False
    attributes = {"Arn": description["TableArn"]}
    if "LatestStreamArn" in description:
        attributes["StreamArn"] = description["LatestStreamArn"]
    ttl = properties.get("TimeToLiveSpecification")
    if created and ttl and ttl.get("Enabled"):
        _client("dynamodb").update_time_to_live(
            TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
        )
    return PhysicalResource(ref=name, attributes=attributes)


def create_queue(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    fifo = bool(properties.get("FifoQueue"))
    name = str(properties.get("QueueName") or stack.physical_name(logical_id, max_length=75 if fifo else 80))
    if fifo and not name.endswith(".fifo"):
        name += ".fifo"
    attributes = {
        attribute: _attribute_text(properties[prop])
        for prop, attribute in _QUEUE_ATTRIBUTES.items()
        if prop in properties
    }
    if "RedrivePolicy" in properties:
        attributes["RedrivePolicy"] = _attribute_text(properties["RedrivePolicy"])
    sqs = _client("sqs")
    url = sqs.create_queue(QueueName=name, Attributes=cast(Any, attributes))["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return PhysicalResource(ref=url, attributes={"Arn": arn, "QueueName": name, "QueueUrl": url})


def create_key(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    """A KMS key in the emulator (its policy is not enforced locally), so topics and log groups can name it."""
    metadata = _client("kms").create_key(Description=str(properties.get("Description", logical_id)))["KeyMetadata"]
    return PhysicalResource(ref=metadata["KeyId"], attributes={"Arn": metadata["Arn"], "KeyId": metadata["KeyId"]})


def create_log_group(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    """A log group in the emulator (functions run in-process locally, so nothing writes to it)."""
    name = str(properties.get("LogGroupName") or f"/local/{stack.physical_name(logical_id)}")
    logs = _client("logs")
    logs.create_log_group(logGroupName=name)
    if "RetentionInDays" in properties:
        logs.put_retention_policy(logGroupName=name, retentionInDays=int(properties["RetentionInDays"]))
    return PhysicalResource(ref=name, attributes={"Arn": stack.arn("logs", f"log-group:{name}:*")})


def create_topic(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    name = str(properties.get("TopicName") or stack.physical_name(logical_id))
    attributes = {
        attribute: _attribute_text(properties[prop])
        for prop, attribute in _TOPIC_ATTRIBUTES.items()
        if prop in properties
    }
    sns = _client("sns")
    arn = sns.create_topic(Name=name, Attributes=attributes)["TopicArn"]
    for subscription in properties.get("Subscription", []):
        sns.subscribe(TopicArn=arn, Protocol=subscription["Protocol"], Endpoint=subscription["Endpoint"])
    return PhysicalResource(ref=arn, attributes={"TopicArn": arn, "TopicName": name})


def create_subscription(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    extra = {
        key: _attribute_text(properties[key]) for key in ("RawMessageDelivery", "FilterPolicy") if key in properties
    }
    arn = _client("sns").subscribe(
        TopicArn=properties["TopicArn"],
        Protocol=properties["Protocol"],
        Endpoint=properties["Endpoint"],
        Attributes=extra,
        ReturnSubscriptionArn=True,
    )["SubscriptionArn"]
    return PhysicalResource(ref=arn)


def create_bucket(stack: Stack, logical_id: str, properties: Mapping[str, Any]) -> PhysicalResource:
    name = str(properties.get("BucketName") or stack.physical_name(logical_id, lower=True, max_length=63))
    s3 = _client("s3")
    s3.create_bucket(Bucket=name)
    versioning = properties.get("VersioningConfiguration")
    if versioning:
        s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": versioning["Status"]})
    encryption = properties.get("BucketEncryption")
    if encryption:
        # CloudFormation's ServerSideEncryptionByDefault is the API's ApplyServerSideEncryptionByDefault.
        rules = [
            {("ApplyServerSideEncryptionByDefault" if key == "ServerSideEncryptionByDefault" else key): value}
            for rule in encryption["ServerSideEncryptionConfiguration"]
            for key, value in rule.items()
        ]
        s3.put_bucket_encryption(Bucket=name, ServerSideEncryptionConfiguration=cast(Any, {"Rules": rules}))
    block = properties.get("PublicAccessBlockConfiguration")
    if block:
        s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    arn = f"arn:aws:s3:::{name}"
    return PhysicalResource(
        ref=name,
        attributes={
            "Arn": arn,
            "DomainName": f"{name}.s3.amazonaws.com",
            "RegionalDomainName": f"{name}.s3.us-east-1.amazonaws.com",
        },
    )


Creator = Callable[[Stack, str, Mapping[str, Any]], PhysicalResource]

CREATORS: dict[str, Creator] = {
    "AWS::KMS::Key": create_key,
    "AWS::Logs::LogGroup": create_log_group,
    "AWS::DynamoDB::Table": create_table,
    "AWS::SQS::Queue": create_queue,
    "AWS::SNS::Topic": create_topic,
    "AWS::SNS::Subscription": create_subscription,
    "AWS::S3::Bucket": create_bucket,
}


def _function(stack: Stack, logical_id: str) -> PhysicalResource:
    properties = stack.resources[logical_id].get("Properties", {})
    name = str(properties.get("FunctionName") or stack.physical_name(logical_id, max_length=64))
    return PhysicalResource(ref=name, attributes={"Arn": stack.arn("lambda", f"function:{name}")})


def _layer(stack: Stack, logical_id: str) -> PhysicalResource:
    arn = stack.arn("lambda", f"layer:{stack.physical_name(logical_id)}:1")
    return PhysicalResource(ref=arn, attributes={"Arn": arn})


def _http_api(stack: Stack, logical_id: str) -> PhysicalResource:
    api_id = "local"
    return PhysicalResource(ref=api_id, attributes={"ApiEndpoint": "http://127.0.0.1", "ApiId": api_id})


def _named(stack: Stack, logical_id: str) -> PhysicalResource:
    return PhysicalResource(ref=stack.physical_name(logical_id))


# Run (not created) by the local stack: only their names matter to the rest of the template.
PLACEHOLDERS: dict[str, Callable[[Stack, str], PhysicalResource]] = {
    "AWS::Serverless::Function": _function,
    "AWS::Lambda::Function": _function,
    "AWS::Serverless::LayerVersion": _layer,
    "AWS::Lambda::LayerVersion": _layer,
    "AWS::Serverless::HttpApi": _http_api,
    "AWS::Lambda::Permission": _named,
}

# Creation calls are round trips to moto and DynamoDB Local, and the first ones are slow (a KMS key costs moto a
# quarter of a second, the first table the JVM a second or two): whatever references nothing still to be created
# is created at once, beside the rest.
_CREATING_AT_ONCE = 8


def references(value: Any) -> set[str]:
    """The names that Ref, Fn::GetAtt and Fn::Sub point to in a resource's properties."""
    found: set[str] = set()
    if isinstance(value, list):
        for item in value:
            found |= references(item)
    elif isinstance(value, dict):
        for key, item in value.items():
            if key == "Ref" and isinstance(item, str):
                found.add(item)
            elif key == "Fn::GetAtt":
                found.add(item.split(".", 1)[0] if isinstance(item, str) else str(item[0]))
            elif key == "Fn::Sub":
                text, variables = (item, {}) if isinstance(item, str) else (item[0], item[1])
                found |= {name.split(".", 1)[0] for name in re.findall(r"\$\{([^!}][^}]*)\}", text) if "::" not in name}
                found |= references(variables)
            else:
                found |= references(item)
    return found


def deploy(stack: Stack) -> list[str]:
    """Create every emulated resource of the stack in the emulator; returns what was not emulated."""
    not_emulated: list[str] = []
    for logical_id, resource in stack.resources.items():
        kind = resource.get("Type", "")
        if kind in PLACEHOLDERS and stack.is_created(logical_id):
            stack.physical[logical_id] = PLACEHOLDERS[kind](stack, logical_id)
    pending = [
        logical_id
        for logical_id, resource in stack.resources.items()
        if resource.get("Type") in CREATORS and stack.is_created(logical_id)
    ]
    waits_for = {}
    for logical_id in pending:
        resource = stack.resources[logical_id]
        depends_on = resource.get("DependsOn", [])
        named = references(resource.get("Properties", {})) | set(
            [depends_on] if isinstance(depends_on, str) else depends_on
        )
        waits_for[logical_id] = named & set(pending)
    created: set[str] = set()
    with ThreadPoolExecutor(_CREATING_AT_ONCE, thread_name_prefix="deploy") as pool:
        creating: dict[Future[PhysicalResource], str] = {}
        while pending or creating:
            for logical_id in [name for name in pending if waits_for[name] <= created]:
                pending.remove(logical_id)
                resource = stack.resources[logical_id]
                properties = stack.resolve(resource.get("Properties", {}))
                creating[pool.submit(CREATORS[resource["Type"]], stack, logical_id, properties)] = logical_id
            if not creating:
                raise ValueError(f"these resources reference each other in a circle: {', '.join(sorted(pending))}")
            finished, _ = wait(creating, return_when=FIRST_COMPLETED)
            for future in finished:
                logical_id = creating.pop(future)
                stack.physical[logical_id] = future.result()
                created.add(logical_id)
    for logical_id, resource in stack.resources.items():
        kind = resource.get("Type", "")
        if kind not in CREATORS and kind not in PLACEHOLDERS:
            not_emulated.append(f"{logical_id} ({kind})")
    return not_emulated
