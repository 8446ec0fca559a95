"""The DynamoDB table: client, key layout and typed errors shared by the item modules."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator, Mapping
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.client import DynamoDBClient
    from mypy_boto3_dynamodb.service_resource import DynamoDBServiceResource, Table

_RETRIES = Config(retries={"mode": "standard", "max_attempts": 5})


class StoreError(Exception):
    """The table refused or failed a request."""


class ConditionFailed(StoreError):
    """A conditional write lost: someone else wrote first."""


class Throttled(StoreError):
    """DynamoDB asked us to slow down, even after the SDK's retries."""


_THROTTLING_CODES = {"ProvisionedThroughputExceededException", "ThrottlingException", "RequestLimitExceeded"}


def translate(error: ClientError) -> StoreError:
    code = error.response.get("Error", {}).get("Code", "")
    if code == "ConditionalCheckFailedException":
        return ConditionFailed(code)
    if code in _THROTTLING_CODES:
        return Throttled(code)
    return StoreError(code or str(error))


@lru_cache(maxsize=1)
def get_resource() -> DynamoDBServiceResource:
    return boto3.resource("dynamodb", config=_RETRIES)


@lru_cache(maxsize=1)
def get_client() -> DynamoDBClient:
    """A plain client whose Query responses reach the caller as DynamoDB sent them (query_as_sent)."""
    client = boto3.client("dynamodb", config=_RETRIES)
    client.meta.events.register("before-parse.dynamodb.Query", _take_items_as_sent)
    return client


def query_as_sent(
    table: Table, key_condition: str, values: Mapping[str, Any], *, consistent: bool = False
) -> Iterator[dict[str, dict[str, Any]]]:
    """Every item a Query matches, page after page, exactly as DynamoDB sends it ({"N": "12"}, {"S": "x"}).

    Neither botocore's per-value parse nor boto3's type conversion runs: for long metrics windows of
    bucket items, whose values the caller turns into numbers once, those were most of the handler's time.
    DynamoDB errors come out as StoreErrors.
    """
    request: dict[str, Any] = {
        "TableName": table.name,
        "KeyConditionExpression": key_condition,
        "ExpressionAttributeValues": dict(values),
        "ConsistentRead": consistent,
    }
    yield from _paged(get_client().query, request)


def _take_items_as_sent(response_dict: dict[str, Any], customized_response_dict: dict[str, Any], **_: Any) -> None:
    # botocore's before-parse hook: what lands in customized_response_dict replaces the parsed fields, so
    # botocore's walk through every attribute value (~5 us each) is skipped. Errors are parsed as usual.
    if response_dict.get("status_code") != 200:
        return
    customized_response_dict.update(json.loads(response_dict["body"]))
    response_dict["body"] = b"{}"


@lru_cache(maxsize=8)
def get_table(table_name: str) -> Table:
    return get_resource().Table(table_name)


def query_items(table: Table, **query: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, page after page; DynamoDB errors come out as StoreErrors."""
    yield from _paged(table.query, query)


def _paged(query: Callable[..., Mapping[str, Any]], request: dict[str, Any]) -> Iterator[Any]:
    while True:
        try:
            page = query(**request)
        except ClientError as error:
            raise translate(error) from error
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def put_if(
    table: Table,
    item: Mapping[str, Any],
    condition: str,
    values: Mapping[str, Any] | None = None,
    names: Mapping[str, str] | None = None,
) -> bool:
    """Put the item if the condition holds; False when it does not. Other DynamoDB errors come out as StoreErrors."""
    request: dict[str, Any] = {"Item": dict(item), "ConditionExpression": condition}
    if values:
        request["ExpressionAttributeValues"] = dict(values)
    if names:
        request["ExpressionAttributeNames"] = dict(names)
    try:
        table.put_item(**request)
    except ClientError as error:
        translated = translate(error)
        if isinstance(translated, ConditionFailed):
            return False
        raise translated from error
    return True


# BatchGetItem takes at most 100 keys per request.
BATCH_GET_LIMIT = 100


def batch_get_items(
    table: Table, keys: Iterable[Mapping[str, str]], *, consistent: bool = False
) -> Iterator[dict[str, Any]]:
    """The items stored under these keys (absent ones left out), 100 keys a request, unprocessed keys retried."""
    wanted = list({(key["pk"], key["sk"]): dict(key) for key in keys}.values())
    for start in range(0, len(wanted), BATCH_GET_LIMIT):
        request: dict[str, Any] = {
            table.name: {"Keys": wanted[start : start + BATCH_GET_LIMIT], "ConsistentRead": consistent}
        }
        while request:
            try:
                response = get_resource().batch_get_item(RequestItems=request)
            except ClientError as error:
                raise translate(error) from error
            yield from response.get("Responses", {}).get(table.name, [])
            request = dict(response.get("UnprocessedKeys") or {})


def conversation_pk(channel: str, conversation_id: str) -> str:
    return f"CONV#{channel}#{conversation_id}"


def to_decimal(value: float) -> Decimal:
    """Numbers we store are rounded to milliseconds so that sums added by DynamoDB stay exact."""
    return Decimal(str(round(value, 3)))
