"""SLA alerts published to the SNS topic that care teams subscribe to."""

from __future__ import annotations

from functools import lru_cache
from typing import TYPE_CHECKING

import boto3
from botocore.exceptions import ClientError

from replyclock.dal.table import StoreError

if TYPE_CHECKING:
    from mypy_boto3_sns.client import SNSClient

# SNS subjects are limited to 100 characters.
_MAX_SUBJECT = 100


@lru_cache(maxsize=1)
def _sns() -> SNSClient:
    return boto3.client("sns")


class AlertPublisher:
    def __init__(self, topic_arn: str) -> None:
        self._topic_arn = topic_arn

    def publish(self, subject: str, message: str, attributes: dict[str, str]) -> None:
        try:
            _sns().publish(
                TopicArn=self._topic_arn,
                Subject=subject[:_MAX_SUBJECT],
                Message=message,
                MessageAttributes={
                    name: {"DataType": "String", "StringValue": value} for name, value in attributes.items() if value
                },
            )
        except ClientError as error:
            raise StoreError(error.response.get("Error", {}).get("Code", "SNS publish failed")) from error
