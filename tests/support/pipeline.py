"""The measuring path under moto: the table from template.yaml, its real stream, both consumers."""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import boto3

from devtools.localstack.lambda_runtime import load_handler
from devtools.localstack.streams import EventSourceMapping, Record, StreamReader
from devtools.localstack.template import (
    REPO_ROOT,
    StreamMapping,
    create_table_arguments,
    load_template,
    resources_of_type,
)
from replyclock.dal.aggregates import BucketStore
from replyclock.dal.brands import BrandStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.posts import PostStore
from replyclock.dal.rollups import RollupStore
from replyclock.models.domain import Brand, Post


def stream_mappings() -> list[StreamMapping]:
    """Each DynamoDB stream event source of template.yaml, with the handler it invokes."""
    template = load_template()
    defaults = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
    mappings = []
    for name, resource in resources_of_type("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        module, _, function_name = properties["Handler"].rpartition(".")
        for event in properties.get("Events", {}).values():
            if event["Type"] != "DynamoDB":
                continue
            spec = event["Properties"]
            on_failure = spec.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            mappings.append(
                StreamMapping(
                    function=name,
                    handler_path=REPO_ROOT / properties["CodeUri"] / f"{module.replace('.', '/')}.py",
                    handler_name=function_name,
                    batch_size=int(spec.get("BatchSize", 100)),
                    maximum_retry_attempts=int(_resolve(spec.get("MaximumRetryAttempts", -1), defaults)),
                    bisect_on_error=bool(spec.get("BisectBatchOnFunctionError", False)),
                    report_batch_item_failures="ReportBatchItemFailures" in spec.get("FunctionResponseTypes", []),
                    filter_patterns=tuple(
                        json.loads(entry["Pattern"]) for entry in spec.get("FilterCriteria", {}).get("Filters", [])
                    ),
                    on_failure_queue=on_failure["Fn::GetAtt"][0] if isinstance(on_failure, dict) else None,
                )
            )
    return mappings


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]
    return value


@dataclass
class Consumer:
    mapping: EventSourceMapping


class Pipeline:
    """Posts in, conversation states and aggregate buckets out, through the real handlers."""

    def __init__(self, table_name: str, stream_arn: str, queues: dict[str, str]) -> None:
        self.table_name = table_name
        self.stream_arn = stream_arn
        self.posts = PostStore(table_name)
        self.conversations = ConversationStore(table_name)
        self.buckets = BucketStore(table_name)
        self.rollups = RollupStore(table_name)
        self.brands = BrandStore(table_name)
        self.queues = queues
        sqs = boto3.client("sqs")
        streams = boto3.client("dynamodbstreams")
        # Each function has its own event-source mapping; one reader feeds both, as reading twice adds nothing.
        self.reader = StreamReader(streams, stream_arn)
        self.consumers = {
            mapping.function: Consumer(
                EventSourceMapping(
                    mapping,
                    # In this process, as the tests run every handler (the local stack runs them in containers).
                    handler=load_handler(mapping.handler_path, mapping.handler_name),
                    send_to_failure_queue=lambda body, url=queues[mapping.on_failure_queue or ""]: sqs.send_message(
                        QueueUrl=url, MessageBody=json.dumps(body)
                    ),
                ),
            )
            for mapping in stream_mappings()
        }

    @classmethod
    def create(cls) -> Pipeline:
        table_name = os.environ["TABLE_NAME"]
        description = boto3.client("dynamodb").create_table(**create_table_arguments("Table", table_name))
        sqs = boto3.client("sqs")
        queues = {
            name: sqs.create_queue(QueueName=name)["QueueUrl"]
            for name in ("MeasureFailureQueue", "AggregateFailureQueue")
        }
        topic_arn = boto3.client("sns").create_topic(Name=os.environ["ALERTS_TOPIC_ARN"].rsplit(":", 1)[1])["TopicArn"]
        queues["AlertsInbox"] = sqs.create_queue(QueueName="AlertsInbox")["QueueUrl"]
        inbox_arn = sqs.get_queue_attributes(QueueUrl=queues["AlertsInbox"], AttributeNames=["QueueArn"])
        boto3.client("sns").subscribe(
            TopicArn=topic_arn,
            Protocol="sqs",
            Endpoint=inbox_arn["Attributes"]["QueueArn"],
            Attributes={"RawMessageDelivery": "true"},
        )
        return cls(table_name, description["TableDescription"]["LatestStreamArn"], queues)

    def add_brands(self, brands: Iterable[Brand]) -> None:
        for brand in brands:
            self.brands.put(brand)
        import_measure_module_cache_reset()

    def write(self, posts: Iterable[Post]) -> int:
        return self.posts.put_many(posts)

    def run(self) -> None:
        """Deliver stream records to measure and aggregate until nothing new appears."""
        while fresh := self.reader.poll():
            for consumer in self.consumers.values():
                for shard_id, records in fresh.items():
                    consumer.mapping.deliver(shard_id, records)

    def stream_records(self) -> list[Record]:
        reader = StreamReader(boto3.client("dynamodbstreams"), self.stream_arn)
        return [record for records in reader.poll().values() for record in records]

    def state_changes(self) -> list[Record]:
        """Every stream record of a conversation-state item so far (what aggregate consumes)."""
        return [r for r in self.stream_records() if r["dynamodb"]["Keys"]["sk"]["S"].startswith("STATE#")]

    def alerts(self) -> list[dict[str, Any]]:
        """Every SLA alert published so far (drains the subscribed inbox)."""
        sqs = boto3.client("sqs")
        received: list[dict[str, Any]] = []
        while messages := sqs.receive_message(QueueUrl=self.queues["AlertsInbox"], MaxNumberOfMessages=10).get(
            "Messages", []
        ):
            for message in messages:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.queues["AlertsInbox"], ReceiptHandle=message["ReceiptHandle"])
        return received

    def parked(self, queue: str) -> list[dict[str, Any]]:
        messages = boto3.client("sqs").receive_message(QueueUrl=self.queues[queue], MaxNumberOfMessages=10)
        return [json.loads(message["Body"]) for message in messages.get("Messages", [])]


def import_measure_module_cache_reset() -> None:
    """Brand configuration is cached per warm container; a test that changes brands starts cold."""
    import sys

    module = sys.modules.get("_replyclock_function_measure")
    if module is not None:
        module._brand_cache = None  # type: ignore[attr-defined]
