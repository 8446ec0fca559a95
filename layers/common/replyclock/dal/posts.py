"""Posts, stored under their conversation so one query returns a whole thread.

A deleted post leaves a tombstone in its place (same key, `item_type` "deleted_post"): measure sees
the change and re-measures the thread, and a page re-read later cannot store the post again.

Export posts also claim an identity item, `IDENTITY#<channel>#<post id>`, naming the conversation
they are stored under. An export infers roots from the reply chains inside the file, so two
overlapping exports can give one post different roots; the identity makes it one post, and lets
a delete line that names only the post find it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from replyclock.dal.table import (
    ConditionFailed,
    batch_get_items,
    conversation_pk,
    get_table,
    put_if,
    query_items,
    to_decimal,
    translate,
)
from replyclock.logic.sentiment import scored
from replyclock.models.domain import Post, PostDeletion

POST_ITEM_TYPE = "post"
DELETED_POST_ITEM_TYPE = "deleted_post"
POST_SK_PREFIX = "POST#"
IDENTITY_SK = "IDENTITY"
_DESERIALIZE = TypeDeserializer()

PostRef = tuple[str, str]  # (channel, post id)


def post_key(post: Post) -> dict[str, str]:
    return {"pk": conversation_pk(post.channel, post.conversation_id), "sk": f"{POST_SK_PREFIX}{post.id}"}


def identity_key(channel: str, post_id: str) -> dict[str, str]:
    return {"pk": f"IDENTITY#{channel}#{post_id}", "sk": IDENTITY_SK}


def post_to_item(post: Post) -> dict[str, Any]:
    item: dict[str, Any] = {**post_key(post), "item_type": POST_ITEM_TYPE}
    for name, value in post.model_dump(mode="json", exclude_none=True).items():
        item[name] = list(value) if isinstance(value, tuple) else value
    for name in ("mentions", "labels", "private"):
        if not item.get(name):
            item.pop(name, None)
    if "sentiment" in item:
        # DynamoDB takes no floats (a score has three decimals: logic.sentiment).
        item["sentiment"] = to_decimal(item["sentiment"])
    return item


def post_from_item(item: Mapping[str, Any]) -> Post:
    fields = {name: value for name, value in item.items() if name not in {"pk", "sk", "item_type"}}
    if "author_reach" in fields:
        fields["author_reach"] = int(fields["author_reach"])
    if isinstance(fields.get("engagement"), Mapping):
        fields["engagement"] = {name: int(count) for name, count in fields["engagement"].items()}
    return Post.model_validate(fields)


# What a later read of a stored post updates (an edit, new counts); what measuring reads stays as first stored.
REFRESHED_FIELDS = ("text", "edited_at", "engagement", "author_reach", "url")


class PostStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, post: Post) -> bool:
        """Store a post once; True when it was new, False when it was already there.

        A post stored already takes the newer text, edit time, counts and reach of this read (one
        conditional update that writes nothing when none of them changed, nor over a tombstone).
        Its sentiment is scored here, so every writer stores one, and kept as first stored (an edit does
        not move a measured wait's recovery).
        """
        item = post_to_item(scored(post))
        if put_if(self._table, item, "attribute_not_exists(pk)"):
            return True
        self._refresh(item)
        return False

    def _refresh(self, item: Mapping[str, Any]) -> None:
        fields = [name for name in REFRESHED_FIELDS if name in item]
        if not fields:
            return
        names = {f"#{name}": name for name in fields}
        values: dict[str, Any] = {f":{name}": item[name] for name in fields}
        changed = " OR ".join(f"attribute_not_exists(#{name}) OR #{name} <> :{name}" for name in fields)
        try:
            self._table.update_item(
                Key={"pk": item["pk"], "sk": item["sk"]},
                UpdateExpression="SET " + ", ".join(f"#{name} = :{name}" for name in fields),
                ConditionExpression=f"item_type = :post AND ({changed})",
                ExpressionAttributeNames=names,
                ExpressionAttributeValues={**values, ":post": POST_ITEM_TYPE},
            )
        except ClientError as error:
            translated = translate(error)
            if not isinstance(translated, ConditionFailed):
                raise translated from error

    def put_many(self, posts: Iterable[Post]) -> int:
        """Store posts one conditional put each (a batch write cannot be conditional); returns how many were new."""
        return sum(self.put(post) for post in posts)

    def put_export_posts(self, posts: Sequence[Post]) -> int:
        """Store an export's posts once each, whatever conversation another export stored them under.

        A post joins the conversation its parent (or, failing that, its root) is stored under; each
        claims its identity before it is stored, so a post claimed already is stored (idempotently)
        where its claim says, and a deleted one is not stored again. Returns how many were new.
        """
        known = self._identities(
            {(post.channel, ref) for post in posts for ref in (post.id, post.in_reply_to, post.conversation_id) if ref}
        )
        joined: dict[PostRef, str] = {}  # (channel, root in the file) -> the conversation it joined
        stored = 0
        for post in posts:
            conversation = (
                known.get((post.channel, post.in_reply_to or ""))
                or joined.get((post.channel, post.conversation_id))
                or known.get((post.channel, post.conversation_id))
                or post.conversation_id
            )
            claimed = self._claim(post.channel, post.id, conversation)
            if claimed is None:
                continue  # deleted upstream
            placed = post if claimed == post.conversation_id else post.model_copy(update={"conversation_id": claimed})
            known[(post.channel, post.id)] = claimed
            joined.setdefault((post.channel, post.conversation_id), claimed)
            stored += self.put(placed)
        return stored

    def _claim(self, channel: str, post_id: str, conversation_id: str) -> str | None:
        """The conversation the post is stored under (claimed now or before); None if it was deleted."""
        item = {**identity_key(channel, post_id), "item_type": "identity", "conversation_id": conversation_id}
        try:
            self._table.put_item(
                Item=item, ConditionExpression="attribute_not_exists(pk)", ReturnValuesOnConditionCheckFailure="ALL_OLD"
            )
        except ClientError as error:
            translated = translate(error)
            if not isinstance(translated, ConditionFailed):
                raise translated from error
            returned: Mapping[str, Any] = error.response.get("Item") or {}  # type: ignore[assignment] # as sent
            existing = (
                {name: _DESERIALIZE.deserialize(value) for name, value in returned.items()}
                if returned
                else self._identity(channel, post_id)
            )
            if "deleted_at" in existing:
                return None
            return str(existing.get("conversation_id") or conversation_id)
        return conversation_id

    def _identity(self, channel: str, post_id: str) -> dict[str, Any]:
        try:
            return self._table.get_item(Key=identity_key(channel, post_id), ConsistentRead=True).get("Item") or {}
        except ClientError as error:
            raise translate(error) from error

    def _identities(self, refs: Iterable[PostRef]) -> dict[PostRef, str]:
        """The conversation each known, not deleted post is stored under."""
        found: dict[PostRef, str] = {}
        keys = (identity_key(channel, post_id) for channel, post_id in set(refs))
        for item in batch_get_items(self._table, keys, consistent=True):
            if "deleted_at" not in item:
                channel, post_id = str(item["pk"]).removeprefix("IDENTITY#").split("#", 1)
                found[(channel, post_id)] = str(item["conversation_id"])
        return found

    def delete(self, deletion: PostDeletion, now: datetime) -> bool:
        """Replace a stored post with its tombstone; False when no such post is stored.

        The post is looked for in the conversation the deletion names, else where its identity says.
        Its identity becomes a tombstone too, so an export replayed later does not store it again.
        """
        claimed = self._identity(deletion.channel, deletion.id) or None
        places = [deletion.conversation_id, claimed.get("conversation_id") if claimed else None]
        deleted = False
        for conversation_id in dict.fromkeys(str(place) for place in places if place):
            deleted = self._tombstone(deletion.channel, conversation_id, deletion.id, now) or deleted
        if claimed is not None and "deleted_at" not in claimed:
            try:
                self._table.put_item(Item={**claimed, "deleted_at": now.isoformat()})
            except ClientError as error:
                raise translate(error) from error
        return deleted

    def _tombstone(self, channel: str, conversation_id: str, post_id: str, now: datetime) -> bool:
        key = {"pk": conversation_pk(channel, conversation_id), "sk": f"{POST_SK_PREFIX}{post_id}"}
        tombstone = {**key, "item_type": DELETED_POST_ITEM_TYPE, "deleted_at": now.isoformat()}
        return put_if(self._table, tombstone, "item_type = :post", {":post": POST_ITEM_TYPE})

    def conversation_posts(self, channel: str, conversation_id: str) -> list[Post]:
        condition = Key("pk").eq(conversation_pk(channel, conversation_id)) & Key("sk").begins_with(POST_SK_PREFIX)
        return [
            post_from_item(item)
            for item in query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True)
            if item.get("item_type") == POST_ITEM_TYPE
        ]

    def get(self, channel: str, conversation_id: str, post_id: str) -> Post | None:
        key = {"pk": conversation_pk(channel, conversation_id), "sk": f"{POST_SK_PREFIX}{post_id}"}
        try:
            found = self._table.get_item(Key=key)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return post_from_item(item) if item and item.get("item_type") == POST_ITEM_TYPE else None
