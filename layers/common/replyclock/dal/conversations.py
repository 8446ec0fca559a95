"""Lanes (one customer's waits for one brand), their archived waits and the conversation head, beside the posts.

Items of a conversation's partition `CONV#<channel>#<root>`:

- `POST#<id>`: the posts (replyclock.dal.posts);
- `STATE#<brand>#<customer>`: a lane: its latest wait, how many it has had, the order key of the
  last post that touched it; in the open-waits index while its latest wait is open, and in the
  brand index (keys only, written once) from its first wait on;
- `STATE#~<brand>#<customer>#<seq>`: an earlier wait of the lane, archived when a newer one opened;
- `HEAD`: per brand, its first post and its latest answer-to-everyone, and the parents that
  posts reply to but that are not stored yet;
- `EFF#<id>`: the effective time of a post whose parent claims a later time than the post does.

Every item is bounded: nothing here grows with the thread.
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.posts import POST_ITEM_TYPE, POST_SK_PREFIX, post_from_item
from replyclock.dal.table import (
    ConditionFailed,
    batch_get_items,
    conversation_pk,
    get_table,
    query_items,
    to_decimal,
    translate,
)
from replyclock.logic.waits import BrandFacts
from replyclock.models.domain import ConversationState, Post, Wait, WaitStatus

STATE_ITEM_TYPE = "state"
STATE_SK_PREFIX = "STATE#"
# Inside the STATE# range (one stream filter feeds aggregate both), outside every brand's lanes
# ("~" starts no brand id).
ARCHIVE_SK_PREFIX = "STATE#~"
HEAD_SK = "HEAD"
EFFECTIVE_SK_PREFIX = "EFF#"
OPEN_WAITS_INDEX = "OpenWaitsByDue"
CONVERSATIONS_BY_BRAND_INDEX = "ConversationsByBrand"
BRAND_INDEX_KEY_NAMES = ("pk", "sk", "gsi2pk", "gsi2sk")
# The open-waits index is spread over a few partitions so one hot key never limits the sweeper.
OPEN_WAIT_PARTITIONS = 4
OPEN_WAIT_PARTITION_PREFIX = "OPEN#"
# A conversation awaiting more missing parents than this is measured whole on every post.
MAX_AWAITED_PARENTS = 100


def index_time(moment: datetime) -> str:
    """Fixed-width UTC time, so index sort keys order chronologically as strings."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_index_time(text: str) -> datetime:
    return datetime.strptime(text, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)


def lane_key(channel: str, conversation_id: str, brand_id: str, customer: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": f"{STATE_SK_PREFIX}{brand_id}#{customer}"}


def state_key(state: ConversationState) -> dict[str, str]:
    key = lane_key(state.channel, state.conversation_id, state.brand_id, state.customer)
    if state.seq is not None:
        key["sk"] = f"{ARCHIVE_SK_PREFIX}{state.brand_id}#{state.customer}#{state.seq:06d}"
    return key


def head_key(channel: str, conversation_id: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": HEAD_SK}


def effective_key(channel: str, conversation_id: str, post_id: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": f"{EFFECTIVE_SK_PREFIX}{post_id}"}


def post_item_key(channel: str, conversation_id: str, post_id: str) -> dict[str, str]:
    return {"pk": conversation_pk(channel, conversation_id), "sk": f"{POST_SK_PREFIX}{post_id}"}


@dataclass
class Head:
    """What a conversation's lanes share: per brand its first post and last answer-to-everyone; awaited parents."""

    brands: dict[str, BrandFacts] = field(default_factory=dict)
    awaited: set[str] = field(default_factory=set)
    version: int = 0

    def same_content(self, other: Head) -> bool:
        return self.brands == other.brands and self.awaited == other.awaited


@dataclass
class ConversationItems:
    """Everything stored in one conversation's partition."""

    posts: list[Post] = field(default_factory=list)
    lanes: dict[tuple[str, str], ConversationState] = field(default_factory=dict)
    archives: dict[tuple[str, str, int], ConversationState] = field(default_factory=dict)
    head: Head | None = None
    effective: dict[str, datetime] = field(default_factory=dict)

    def waits_of(self, lane: ConversationState) -> list[Wait]:
        """Every wait of a lane, oldest first: its archived waits, then its latest."""
        earlier: list[Wait] = []
        for seq in range(1, lane.wait_count):
            archived = self.archives.get((lane.brand_id, lane.customer, seq))
            earlier += archived.waits if archived else []
        return [*earlier, *lane.waits]


def open_wait_index_sort_key(state: ConversationState) -> str | None:
    """An open wait's place in the open-waits index: its due time, which a status move does not change."""
    wait = state.open_wait
    if wait is None:
        return None
    key = state_key(state)
    return f"{index_time(wait.due_at)}#{key['pk']}#{key['sk']}"


def _wait_to_item(wait: Wait) -> dict[str, Any]:
    return _numbers_as_decimal(wait.model_dump(mode="json"))


def state_to_item(state: ConversationState) -> dict[str, Any]:
    key = state_key(state)
    item: dict[str, Any] = {
        **key,
        "item_type": STATE_ITEM_TYPE,
        "channel": state.channel,
        "conversation_id": state.conversation_id,
        "brand_id": state.brand_id,
        "customer": state.customer,
        "version": state.version,
        "waits": [_wait_to_item(wait) for wait in state.waits],
    }
    if state.seq is not None:
        item["seq"] = state.seq
        return item
    item["wait_count"] = state.wait_count
    if state.last_key is not None:
        item["last_key"] = state.last_key
    if state.status is not None:
        item["status"] = state.status.value
    if state.first_started_at is not None:
        # Keys only in the brand index, and they never move once set: a lane costs one index write in its life.
        item["first_started_at"] = index_time(state.first_started_at)
        item["gsi2pk"] = f"BRAND#{state.brand_id}"
        item["gsi2sk"] = f"{index_time(state.first_started_at)}#{state.channel}#{state.conversation_id}"
    open_wait = state.open_wait
    sort_key = open_wait_index_sort_key(state)
    if open_wait is not None and sort_key is not None:
        partition = zlib.crc32(f"{key['pk']}|{key['sk']}".encode()) % OPEN_WAIT_PARTITIONS
        item["gsi1pk"] = f"{OPEN_WAIT_PARTITION_PREFIX}{partition}"
        item["gsi1sk"] = sort_key
        item["open_since"] = index_time(open_wait.started_at)
        item["at_risk_at"] = index_time(open_wait.at_risk_at)
        if open_wait.exposure:
            # Projected into the open-waits index: the sweeper sums and orders by it without reading lanes.
            item["exposure"] = open_wait.exposure
    return item


def state_from_item(item: Mapping[str, Any]) -> ConversationState:
    first = item.get("first_started_at")
    return ConversationState.model_validate(
        {
            "channel": item["channel"],
            "conversation_id": item["conversation_id"],
            "brand_id": item["brand_id"],
            "customer": item["customer"],
            "seq": int(item["seq"]) if "seq" in item else None,
            "version": int(item["version"]),
            "waits": [_decimals_as_numbers(wait) for wait in item.get("waits", [])],
            "wait_count": int(item.get("wait_count", 0)),
            "last_key": item.get("last_key"),
            "first_started_at": parse_index_time(str(first)) if first else None,
        }
    )


def head_to_item(channel: str, conversation_id: str, head: Head) -> dict[str, Any]:
    return {
        **head_key(channel, conversation_id),
        "item_type": "head",
        "version": head.version,
        "brands": {
            brand_id: {
                name: value
                for name, value in (("first", facts.first_key), ("broadcast", facts.broadcast_key))
                if value is not None
            }
            for brand_id, facts in sorted(head.brands.items())
        },
        "awaited": sorted(head.awaited),
    }


def head_from_item(item: Mapping[str, Any]) -> Head:
    return Head(
        brands={
            str(brand_id): BrandFacts(first_key=facts.get("first"), broadcast_key=facts.get("broadcast"))
            for brand_id, facts in item.get("brands", {}).items()
        },
        awaited={str(parent) for parent in item.get("awaited", [])},
        version=int(item["version"]),
    )


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
    if checked["gsi2pk"] != f"BRAND#{brand_id}" or not checked["sk"].startswith(f"{STATE_SK_PREFIX}{brand_id}#"):
        raise ValueError("start key belongs to another brand")
    if not checked["pk"].startswith("CONV#"):
        raise ValueError("start key is not a conversation")
    if not index_time(since) <= checked["gsi2sk"] <= index_time(until):
        raise ValueError("start key lies outside the window")
    return checked


def _string_key(key: Mapping[str, Any] | None) -> dict[str, str] | None:
    return {name: str(value) for name, value in key.items()} if key else None


def _numbers_as_decimal(fields: dict[str, Any]) -> dict[str, Any]:
    return {name: to_decimal(value) if isinstance(value, float) else value for name, value in fields.items()}


def _decimals_as_numbers(fields: Mapping[str, Any]) -> dict[str, Any]:
    return {name: float(value) if isinstance(value, Decimal) else value for name, value in fields.items()}


class ConversationStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def load(self, channel: str, conversation_id: str) -> ConversationItems:
        """Everything in a conversation's partition, in one strongly consistent query."""
        items = ConversationItems()
        partition = Key("pk").eq(conversation_pk(channel, conversation_id))
        for item in query_items(self._table, KeyConditionExpression=partition, ConsistentRead=True):
            self._sort_into(items, item)
        return items

    def get_many(self, keys: Iterable[Mapping[str, str]]) -> ConversationItems:
        """The items at these keys of one conversation (absent ones are simply missing), strongly consistent."""
        items = ConversationItems()
        for item in self._batch_get(keys):
            self._sort_into(items, item)
        return items

    def _batch_get(self, keys: Iterable[Mapping[str, str]]) -> list[dict[str, Any]]:
        return list(batch_get_items(self._table, keys, consistent=True))

    def lanes_of_brand(self, channel: str, conversation_id: str, brand_id: str) -> list[ConversationState]:
        """Every lane of one brand in a conversation (its archived waits not included)."""
        condition = Key("pk").eq(conversation_pk(channel, conversation_id)) & Key("sk").begins_with(
            f"{STATE_SK_PREFIX}{brand_id}#"
        )
        return [
            state_from_item(item)
            for item in query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True)
        ]

    @staticmethod
    def _sort_into(items: ConversationItems, item: Mapping[str, Any]) -> None:
        sort_key = str(item["sk"])
        if item.get("item_type") == POST_ITEM_TYPE:
            items.posts.append(post_from_item(item))
        elif item.get("item_type") == STATE_ITEM_TYPE:
            state = state_from_item(item)
            if state.seq is None:
                items.lanes[(state.brand_id, state.customer)] = state
            else:
                items.archives[(state.brand_id, state.customer, state.seq)] = state
        elif sort_key == HEAD_SK:
            items.head = head_from_item(item)
        elif sort_key.startswith(EFFECTIVE_SK_PREFIX):
            items.effective[sort_key.removeprefix(EFFECTIVE_SK_PREFIX)] = parse_index_time(str(item["effective_at"]))

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
        """A brand's lanes whose first wait started in [since, until), newest first, and the key to resume after.

        The brand index holds keys only (so it is written once per lane); the lanes themselves are
        read by key. Channel and status are filters, so at most `max_reads` pages are read: a sparse
        filter can return fewer than `limit` lanes together with a key to resume from.
        """
        query: dict[str, Any] = {
            "IndexName": CONVERSATIONS_BY_BRAND_INDEX,
            "KeyConditionExpression": Key("gsi2pk").eq(f"BRAND#{brand_id}")
            & Key("gsi2sk").between(index_time(since), index_time(until)),
            "ScanIndexForward": False,
        }
        if start_key is not None:
            query["ExclusiveStartKey"] = dict(start_key)
        states: list[ConversationState] = []
        for _ in range(max_reads):
            query["Limit"] = min(100, (limit - len(states)) * (4 if channel or status else 1))
            try:
                page = self._table.query(**query)
            except ClientError as error:
                raise translate(error) from error
            keys = page.get("Items", [])
            last_evaluated = page.get("LastEvaluatedKey")
            found = {
                (str(item["pk"]), str(item["sk"])): state_from_item(item)
                for item in self._batch_get({"pk": str(key["pk"]), "sk": str(key["sk"])} for key in keys)
            }
            for position, key in enumerate(keys):
                state = found.get((str(key["pk"]), str(key["sk"])))
                if state is None or (channel and state.channel != channel) or (status and state.status != status):
                    continue
                states.append(state)
                if len(states) == limit:
                    if position < len(keys) - 1:
                        return states, {name: str(key[name]) for name in BRAND_INDEX_KEY_NAMES}
                    return states, _string_key(last_evaluated)
            if last_evaluated is None:
                return states, None
            query["ExclusiveStartKey"] = last_evaluated
        return states, _string_key(query.get("ExclusiveStartKey"))

    def states_of_brand(self, brand_id: str, since: datetime, until: datetime) -> list[ConversationState]:
        """Every lane of a brand whose first wait started in [since, until), and each lane's archived waits.

        For reconciling buckets: lanes and archived waits are the state items whose stream records feed them.
        """
        condition = Key("gsi2pk").eq(f"BRAND#{brand_id}") & Key("gsi2sk").between(index_time(since), index_time(until))
        index_keys = query_items(self._table, IndexName=CONVERSATIONS_BY_BRAND_INDEX, KeyConditionExpression=condition)
        keys = [{"pk": str(key["pk"]), "sk": str(key["sk"])} for key in index_keys]
        lanes = [state_from_item(item) for item in self._batch_get(keys)]
        archive_keys = [
            state_key(lane.model_copy(update={"seq": seq})) for lane in lanes for seq in range(1, lane.wait_count)
        ]
        return lanes + [state_from_item(item) for item in self._batch_get(archive_keys)]

    def lane_waits(self, lanes: Iterable[ConversationState]) -> dict[tuple[str, str], list[Wait]]:
        """Every wait of each lane, oldest first, keyed by the lane's (pk, sk); one batch read for all archives."""
        lanes = list(lanes)
        archive_keys = [
            state_key(lane.model_copy(update={"seq": seq})) for lane in lanes for seq in range(1, lane.wait_count)
        ]
        by_conversation: dict[str, ConversationItems] = defaultdict(ConversationItems)
        for item in self._batch_get(archive_keys):
            self._sort_into(by_conversation[str(item["pk"])], item)
        waits: dict[tuple[str, str], list[Wait]] = {}
        for lane in lanes:
            key = state_key(lane)
            waits[(key["pk"], key["sk"])] = by_conversation[key["pk"]].waits_of(lane)
        return waits

    def get(self, channel: str, conversation_id: str, brand_id: str, customer: str) -> ConversationState | None:
        try:
            found = self._table.get_item(
                Key=lane_key(channel, conversation_id, brand_id, customer), ConsistentRead=True
            )
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return state_from_item(item) if item else None

    def save(self, state: ConversationState, previous_version: int | None) -> ConversationState:
        """Write the lane or archived wait as its next version; ConditionFailed if someone wrote since we read."""
        saved = state.model_copy(update={"version": (previous_version or 0) + 1})
        self._put(state_to_item(saved), previous_version)
        return saved

    def archive(self, state: ConversationState) -> ConversationState:
        """Archive a superseded wait where no wait is archived yet (a recompute may have left an empty one).

        ConditionFailed when a wait is archived there already: the lane's history is not what the caller read.
        """
        try:
            found = self._table.get_item(Key=state_key(state), ConsistentRead=True).get("Item")
        except ClientError as error:
            raise translate(error) from error
        previous = state_from_item(found) if found else None
        if previous is not None and previous.waits:
            raise ConditionFailed(f"{state_key(state)} holds a wait already")
        return self.save(state, previous.version if previous else None)

    def save_head(self, channel: str, conversation_id: str, head: Head, previous_version: int | None) -> Head:
        saved = Head(brands=head.brands, awaited=head.awaited, version=(previous_version or 0) + 1)
        self._put(head_to_item(channel, conversation_id, saved), previous_version)
        return saved

    def save_effective_times(self, channel: str, conversation_id: str, changes: Mapping[str, datetime | None]) -> None:
        """Record (or, for None, forget) the effective time of posts whose parent claims a later time."""
        for post_id, effective_at in sorted(changes.items()):
            key = effective_key(channel, conversation_id, post_id)
            try:
                if effective_at is None:
                    self._table.delete_item(Key=key)
                else:
                    self._table.put_item(
                        Item={**key, "item_type": "effective", "effective_at": index_time(effective_at)}
                    )
            except ClientError as error:
                raise translate(error) from error

    def _put(self, item: dict[str, Any], previous_version: int | None) -> None:
        if previous_version is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#version = :previous",
                "ExpressionAttributeNames": {"#version": "version"},
                "ExpressionAttributeValues": {":previous": previous_version},
            }
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as error:
            translated = translate(error)
            raise translated from error
