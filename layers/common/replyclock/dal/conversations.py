"""Conversation states: the waits of one brand in one conversation, beside the conversation's posts."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.posts import POST_ITEM_TYPE, post_from_item
from replyclock.dal.table import conversation_pk, get_table, to_decimal, translate
from replyclock.models.domain import ConversationState, Post, WaitStatus

STATE_ITEM_TYPE = "state"
STATE_SK_PREFIX = "STATE#"
OPEN_WAITS_INDEX = "OpenWaitsByDue"
CONVERSATIONS_BY_BRAND_INDEX = "ConversationsByBrand"
# The open-waits index is spread over a few partitions so one hot key never limits the sweeper.
OPEN_WAIT_PARTITIONS = 4


def index_time(moment: datetime) -> str:
    """Fixed-width UTC time, so index sort keys order chronologically as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def state_key(channel: str, conversation_id: str, brand_id: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": f"{STATE_SK_PREFIX}{brand_id}"}


def next_alert_at(state: ConversationState) -> datetime | None:
    """When the sweeper must next look at this conversation: at-risk time, then due time."""
    wait = state.open_wait
    if wait is None or wait.status is WaitStatus.BREACHED:
        return None
    return wait.due_at if wait.status is WaitStatus.AT_RISK else wait.at_risk_at


def state_to_item(state: ConversationState) -> dict[str, Any]:
    key = state_key(state.channel, state.conversation_id, state.brand_id)
    item: dict[str, Any] = {
        **key,
        "item_type": STATE_ITEM_TYPE,
        "channel": state.channel,
        "conversation_id": state.conversation_id,
        "brand_id": state.brand_id,
        "version": state.version,
        "waits": [_numbers_as_decimal(wait.model_dump(mode="json")) for wait in state.waits],
    }
    if state.status is not None:
        item["status"] = state.status.value
    first_started_at = state.first_started_at
    if first_started_at is not None:
        item["gsi2pk"] = f"BRAND#{state.brand_id}"
        item["gsi2sk"] = f"{index_time(first_started_at)}#{state.channel}#{state.conversation_id}"
    alert_at = next_alert_at(state)
    if alert_at is not None:
        partition = zlib.crc32(f"{key['pk']}|{key['sk']}".encode()) % OPEN_WAIT_PARTITIONS
        item["gsi1pk"] = f"OPEN#{partition}"
        item["gsi1sk"] = f"{index_time(alert_at)}#{key['pk']}#{key['sk']}"
    return item


def state_from_item(item: Mapping[str, Any]) -> ConversationState:
    return ConversationState.model_validate(
        {
            "channel": item["channel"],
            "conversation_id": item["conversation_id"],
            "brand_id": item["brand_id"],
            "version": int(item["version"]),
            "waits": [_decimals_as_numbers(wait) for wait in item.get("waits", [])],
        }
    )


def _numbers_as_decimal(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: to_decimal(value) if isinstance(value, float) else value for name, value in fields.items()}


def _decimals_as_numbers(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: float(value) if isinstance(value, Decimal) else value for name, value in fields.items()}


class ConversationStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def load(self, channel: str, conversation_id: str) -> tuple[list[Post], dict[str, ConversationState]]:
        """A conversation's posts and its states by brand, in one strongly consistent query."""
        posts: list[Post] = []
        states: dict[str, ConversationState] = {}
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(conversation_pk(channel, conversation_id)),
            "ConsistentRead": True,
        }
        while True:
            try:
                page = self._table.query(**query)
            except ClientError as error:
                raise translate(error) from error
            for item in page.get("Items", []):
                if item.get("item_type") == POST_ITEM_TYPE:
                    posts.append(post_from_item(item))
                elif item.get("item_type") == STATE_ITEM_TYPE:
                    state = state_from_item(item)
                    states[state.brand_id] = state
            if "LastEvaluatedKey" not in page:
                return posts, states
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def get(self, channel: str, conversation_id: str, brand_id: str) -> ConversationState | None:
        try:
            found = self._table.get_item(Key=state_key(channel, conversation_id, brand_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return state_from_item(item) if item else None

    def save(self, state: ConversationState, previous_version: int | None) -> ConversationState:
        """Write the state as the next version; raises ConditionFailed if someone wrote since we read."""
        saved = state.model_copy(update={"version": (previous_version or 0) + 1})
        if previous_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#version = :previous",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":previous": previous_version},
            }
        try:
            self._table.put_item(Item=state_to_item(saved), **condition)
        except ClientError as error:
            raise translate(error) from error
        return saved
