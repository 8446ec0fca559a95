"""The fast JSON path of moto's DynamoDB responses (installed for the whole run) gives exactly moto's own answers."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto.core.responses import ActionResult, BaseResponse

from devtools.localstack import moto_patches
from devtools.localstack.template import create_table_arguments


@pytest.fixture
def compared(aws: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, list[str]]]:
    """Every DynamoDB response is serialized both ways; yields the actions that matched and those that did not."""
    seen: dict[str, list[str]] = {"same": [], "different": [], "fallback": []}

    def both(self: BaseResponse, result: ActionResult) -> Any:
        status, headers, body = moto_patches.original_serialized(self, result)
        if self.boto3_service_name in moto_patches.JSON_SERVICES and not isinstance(result.result, Exception):
            fast = moto_patches.fast_body(self.boto3_service_name, self._get_action(), result.result)
            verdict = "fallback" if fast is None else "same" if json.loads(fast) == json.loads(body) else "different"
            seen[verdict].append(self._get_action())
        return status, headers, body

    monkeypatch.setattr(BaseResponse, "serialized", both)
    yield seen


def test_responses_of_every_kind_of_item_and_call_are_identical(compared: dict[str, list[str]]) -> None:
    # Given the template's table with items of every attribute type, and its stream
    client = boto3.client("dynamodb")
    stream_arn = client.create_table(**create_table_arguments("Table", "fast-json"))["TableDescription"][
        "LatestStreamArn"
    ]
    item: dict[str, Any] = {
        "pk": {"S": "CONV#x#1"},
        "sk": {"S": "POST#1"},
        "text": {"S": "héllo"},
        "n": {"N": "12.50"},
        "yes": {"BOOL": True},
        "nothing": {"NULL": True},
        "raw": {"B": b"\x00\xff"},
        "strings": {"SS": ["a", "b"]},
        "numbers": {"NS": ["1", "2"]},
        "blobs": {"BS": [b"x"]},
        "nested": {"M": {"waits": {"L": [{"M": {"at": {"S": "2026"}, "n": {"N": "0"}}}, {"L": []}]}}},
        "gsi2pk": {"S": "BRAND#acme"},
        "gsi2sk": {"S": "2026#x#1"},
    }
    client.put_item(TableName="fast-json", Item=item)
    key: dict[str, Any] = {"pk": item["pk"], "sk": item["sk"]}

    # When it is read and changed through every call the service makes
    client.get_item(TableName="fast-json", Key=key, ConsistentRead=True)
    client.query(TableName="fast-json", KeyConditionExpression="pk = :p", ExpressionAttributeValues={":p": item["pk"]})
    client.query(
        TableName="fast-json",
        IndexName="ConversationsByBrand",
        KeyConditionExpression="gsi2pk = :p",
        ExpressionAttributeValues={":p": {"S": "BRAND#acme"}},
    )
    client.update_item(
        TableName="fast-json",
        Key=key,
        UpdateExpression="ADD c :one SET g = :g",
        ExpressionAttributeValues={":one": {"N": "1"}, ":g": {"S": "000001|1"}},
        ReturnValues="ALL_NEW",
    )
    client.batch_get_item(RequestItems={"fast-json": {"Keys": [key]}})
    client.scan(TableName="fast-json")
    client.describe_table(TableName="fast-json")
    client.delete_item(TableName="fast-json", Key=key, ReturnValues="ALL_OLD")
    streams = boto3.client("dynamodbstreams")
    shard = streams.describe_stream(StreamArn=stream_arn)["StreamDescription"]["Shards"][0]["ShardId"]
    iterator = streams.get_shard_iterator(StreamArn=stream_arn, ShardId=shard, ShardIteratorType="TRIM_HORIZON")
    records = streams.get_records(ShardIterator=iterator["ShardIterator"])["Records"]

    # Then the fast path answered every one of them, with moto's own JSON
    assert [record["eventName"] for record in records] == ["INSERT", "MODIFY", "REMOVE"]
    assert compared["different"] == []
    assert compared["fallback"] == []
    assert set(compared["same"]) >= {"GetItem", "Query", "UpdateItem", "BatchGetItem", "Scan", "GetRecords"}


def test_the_patches_are_installed_once_for_the_whole_run() -> None:
    # tests/conftest.py installed them; the local stack installs them again: that changes nothing
    installed = BaseResponse.serialized
    moto_patches.install()
    assert BaseResponse.serialized is installed
    assert installed is not moto_patches.original_serialized


def test_errors_keep_moto_s_own_serializer(aws: None) -> None:
    with pytest.raises(ClientError) as raised:
        boto3.client("dynamodb").get_item(TableName="missing", Key={"pk": {"S": "x"}})
    assert raised.value.response["Error"]["Code"] == "ResourceNotFoundException"


def test_installed_the_client_reads_the_same_items(aws: None) -> None:
    client = boto3.client("dynamodb")
    client.create_table(**create_table_arguments("Table", "fast-json"))
    client.put_item(TableName="fast-json", Item={"pk": {"S": "a"}, "sk": {"S": "b"}, "n": {"N": "1.5"}})
    found = client.get_item(TableName="fast-json", Key={"pk": {"S": "a"}, "sk": {"S": "b"}})["Item"]
    assert found == {"pk": {"S": "a"}, "sk": {"S": "b"}, "n": {"N": "1.5"}}
