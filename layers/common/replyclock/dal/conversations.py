"""Conversation states: the waits of one brand in one conversation, beside the conversation's posts."""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Attr, ConditionBase, Key
from botocore.exceptions import ClientError

from replyclock.dal.posts import POST_ITEM_TYPE, post_from_item
from replyclock.dal.table import conversation_pk, get_table, query_items, to_decimal, translate
from replyclock.models.domain import ConversationState, Post, WaitStatus

STATE_ITEM_TYPE = "state"
STATE_SK_PREFIX = "STATE#"
OPEN_WAITS_INDEX = "OpenWaitsByDue"
CONVERSATIONS_BY_BRAND_INDEX = "ConversationsByBrand"
BRAND_INDEX_KEY_NAMES = ("pk", "sk", "gsi2pk", "gsi2sk")
# The open-waits index is spread over a few partitions so one hot key never limits the sweeper.
OPEN_WAIT_PARTITIONS = 4
OPEN_WAIT_PARTITION_PREFIX = "OPEN#"
NO_MORE_ALERTS = "~"


def index_time(moment: datetime) -> str:
    """Fixed-width UTC time, so index sort keys order chronologically as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def state_key(channel: str, conversation_id: str, brand_id: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": f"{STATE_SK_PREFIX}{brand_id}"}


def next_alert_at(state: ConversationState) -> datetime | None:
    """When the sweeper must next act on this conversation: at-risk time, then due time, then never."""
    wait = state.open_wait
    if wait is None or wait.status is WaitStatus.BREACHED:
        return None
    return wait.due_at if wait.status is WaitStatus.AT_RISK else wait.at_risk_at


def open_wait_index_sort_key(state: ConversationState) -> str | None:
    """Every open wait is in the open-waits index; breached ones sort after all times ("~" > digits)."""
    if state.open_wait is None:
        return None
    alert_at = next_alert_at(state)
    key = state_key(state.channel, state.conversation_id, state.brand_id)
    alert = index_time(alert_at) if alert_at else NO_MORE_ALERTS
    return f"{alert}#{key['pk']}#{key['sk']}"


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
    open_wait = state.open_wait
    open_wait_sort_key = open_wait_index_sort_key(state)
    if open_wait is not None and open_wait_sort_key is not None:
        partition = zlib.crc32(f"{key['pk']}|{key['sk']}".encode()) % OPEN_WAIT_PARTITIONS
        item["gsi1pk"] = f"{OPEN_WAIT_PARTITION_PREFIX}{partition}"
        item["gsi1sk"] = open_wait_sort_key
        item["open_since"] = index_time(open_wait.started_at)
    return item


def check_brand_index_key(key: Mapping[str, object], brand_id: str, since: datetime, until: datetime) -> dict[str, str]:
    """`key` as a start key for ConversationStore.by_brand(brand_id, since, until); ValueError if it cannot be one.

    A start key outside the query's range makes DynamoDB fail the request, so keys that come back
    from clients (pagination cursors) are checked here first.
    """
    if set(key) != set(BRAND_INDEX_KEY_NAMES) or not all(isinstance(value, str) for value in key.values()):
        raise ValueError(f"a start key has exactly the string attributes {', '.join(BRAND_INDEX_KEY_NAMES)}")
    checked = {name: str(key[name]) for name in BRAND_INDEX_KEY_NAMES}
    if any(len(value.encode()) > 1024 for value in checked.values()):
        raise ValueError("start key attribute too long")
    if checked["gsi2pk"] != f"BRAND#{brand_id}" or checked["sk"] != f"{STATE_SK_PREFIX}{brand_id}":
        raise ValueError("start key belongs to another brand")
    if not checked["pk"].startswith("CONV#"):
        raise ValueError("start key is not a conversation")
    if not index_time(since) <= checked["gsi2sk"] <= index_time(until):
        raise ValueError("start key lies outside the window")
    return checked


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


def _string_key(key: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {name: str(value) for name, value in key.items()} if key else None


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
        partition = Key("pk").eq(conversation_pk(channel, conversation_id))
        for item in query_items(self._table, KeyConditionExpression=partition, ConsistentRead=True):
            if item.get("item_type") == POST_ITEM_TYPE:
                posts.append(post_from_item(item))
            elif item.get("item_type") == STATE_ITEM_TYPE:
                state = state_from_item(item)
                states[state.brand_id] = state
        return posts, states

    def by_brand(
        self,
        brand_id: str,
        since: datetime,
        until: datetime,
        *,
        channel: str | None = None,
        status: WaitStatus | None = None,
        limit: int = 50,
        start_key: Mapping[str, str] | None = None,
        max_reads: int = 8,
    ) -> tuple[list[ConversationState], dict[str, str] | None]:
        """A brand's states whose first wait started in [since, until), newest first, and the key to resume after.

        Channel and status are filters (read, then dropped), so at most `max_reads` pages are read: a
        sparse filter can return fewer than `limit` states together with a key to resume from.
        """
        query: dict[str, Any] = {
            "IndexName": CONVERSATIONS_BY_BRAND_INDEX,
            "KeyConditionExpression": Key("gsi2pk").eq(f"BRAND#{brand_id}")
            & Key("gsi2sk").between(index_time(since), index_time(until)),
            "ScanIndexForward": False,
        }
        filters: list[ConditionBase] = []
        if channel is not None:
            filters.append(Attr("channel").eq(channel))
        if status is not None:
            filters.append(Attr("status").eq(status.value))
        if filters:
            condition = filters[0]
            for extra in filters[1:]:
                condition = condition & extra
            query["FilterExpression"] = condition
        if start_key is not None:
            query["ExclusiveStartKey"] = dict(start_key)
        states: list[ConversationState] = []
        for _ in range(max_reads):
            wanted = limit - len(states)
            # Without filters every item read is returned; with them, read ahead (pages stop at 1 MB anyway).
            query["Limit"] = min(1000, wanted * 4) if filters else wanted
            try:
                page = self._table.query(**query)
            except ClientError as error:
                raise translate(error) from error
            items = page.get("Items", [])
            last_evaluated = page.get("LastEvaluatedKey")
            for position, item in enumerate(items):
                states.append(state_from_item(item))
                if len(states) == limit:
                    if position < len(items) - 1:
                        return states, {name: str(item[name]) for name in BRAND_INDEX_KEY_NAMES}
                    return states, _string_key(last_evaluated)
            if last_evaluated is None:
                return states, None
            query["ExclusiveStartKey"] = last_evaluated
        return states, _string_key(query.get("ExclusiveStartKey"))

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
