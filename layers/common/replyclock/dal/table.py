"""The DynamoDB table: client, key layout and typed errors shared by the item modules."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal
from functools import lru_cache
from typing import TYPE_CHECKING, Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

if TYPE_CHECKING:
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


@lru_cache(maxsize=8)
def get_table(table_name: str) -> Table:
    return get_resource().Table(table_name)


def query_items(table: Table, **query: Any) -> Iterator[dict[str, Any]]:
    """Every item a Query matches, page after page; DynamoDB errors come out as StoreErrors."""
    while True:
        try:
            page = table.query(**query)
        except ClientError as error:
            raise translate(error) from error
        yield from page.get("Items", [])
        if "LastEvaluatedKey" not in page:
            return
        query["ExclusiveStartKey"] = page["LastEvaluatedKey"]


def conversation_pk(channel: str, conversation_id: str) -> str:
    return f"CONV#{channel}#{conversation_id}"


def to_decimal(value: float) -> Decimal:
    """Numbers we store are rounded to milliseconds so that sums added by DynamoDB stay exact."""
    return Decimal(str(round(value, 3)))
