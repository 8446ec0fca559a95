"""Posts, stored under their conversation so one query returns a whole thread."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import ConditionFailed, conversation_pk, get_table, query_items, translate
from replyclock.models.domain import Post

POST_ITEM_TYPE = "post"
POST_SK_PREFIX = "POST#"


def post_key(post: Post) -> dict[str, str]:
    return {"pk": conversation_pk(post.channel, post.conversation_id), "sk": f"{POST_SK_PREFIX}{post.id}"}


def post_to_item(post: Post) -> dict[str, Any]:
    item: dict[str, Any] = {**post_key(post), "item_type": POST_ITEM_TYPE}
    for name, value in post.model_dump(mode="json", exclude_none=True).items():
        item[name] = list(value) if isinstance(value, tuple) else value
    if not item.get("mentions"):
        item.pop("mentions", None)
    return item


def post_from_item(item: Mapping[str, Any]) -> Post:
    fields = {name: value for name, value in item.items() if name not in {"pk", "sk", "item_type"}}
    if "author_reach" in fields:
        fields["author_reach"] = int(fields["author_reach"])
    return Post.model_validate(fields)


class PostStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, post: Post) -> bool:
        """Store a post once; True when it was new, False when it was already there."""
        try:
            self._table.put_item(Item=post_to_item(post), ConditionExpression="attribute_not_exists(pk)")
        except ClientError as error:
            translated = translate(error)
            if isinstance(translated, ConditionFailed):
                return False
            raise translated from error
        return True

    def put_many(self, posts: Iterable[Post]) -> int:
        """Store posts one conditional put each (a batch write cannot be conditional); returns how many were new."""
        return sum(self.put(post) for post in posts)

    def conversation_posts(self, channel: str, conversation_id: str) -> list[Post]:
        condition = Key("pk").eq(conversation_pk(channel, conversation_id)) & Key("sk").begins_with(POST_SK_PREFIX)
        return [
            post_from_item(item)
            for item in query_items(self._table, KeyConditionExpression=condition, ConsistentRead=True)
        ]

    def get(self, channel: str, conversation_id: str, post_id: str) -> Post | None:
        key = {"pk": conversation_pk(channel, conversation_id), "sk": f"{POST_SK_PREFIX}{post_id}"}
        try:
            found = self._table.get_item(Key=key)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return post_from_item(item) if item else None
