"""Stream records the measuring path consumes, as Powertools parser models over our item shapes."""

from __future__ import annotations

from typing import Any, Literal

from aws_lambda_powertools.utilities.parser.models import DynamoDBStreamChangedRecordModel, DynamoDBStreamRecordModel
from pydantic import BaseModel, ConfigDict

from replyclock.models.domain import BrandId, Channel, ConversationState, PostId, Wait


class PostImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    item_type: Literal["post"]
    channel: Channel
    conversation_id: PostId
    id: PostId


class DeletedPostImage(BaseModel):
    """The tombstone a deleted post leaves in its place."""

    model_config = ConfigDict(extra="ignore")

    item_type: Literal["deleted_post"]


class PostChange(DynamoDBStreamChangedRecordModel):
    NewImage: PostImage | DeletedPostImage | None = None
    OldImage: PostImage | None = None


class PostRecord(DynamoDBStreamRecordModel):
    """A post stored for the first time, or deleted (replaced by its tombstone, or removed from the table)."""

    eventName: Literal["INSERT", "MODIFY", "REMOVE"]
    dynamodb: PostChange

    @property
    def is_removal(self) -> bool:
        return self.eventName != "INSERT"

    @property
    def post(self) -> PostImage:
        image = self.dynamodb.OldImage if self.is_removal else self.dynamodb.NewImage
        if not isinstance(image, PostImage):
            raise ValueError(f"a post {self.eventName} record without the post's image")
        return image


class StateImage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    pk: str
    sk: str
    item_type: Literal["state"]
    channel: Channel
    conversation_id: PostId
    brand_id: BrandId
    customer: str
    seq: int | None = None
    version: int
    waits: list[Wait]
    wait_count: int = 0
    last_key: str | None = None
    first_started_at: str | None = None

    @property
    def source_key(self) -> str:
        return f"{self.pk}|{self.sk}"

    def to_state(self) -> ConversationState:
        return ConversationState(
            channel=self.channel,
            conversation_id=self.conversation_id,
            brand_id=self.brand_id,
            customer=self.customer,
            seq=self.seq,
            version=self.version,
            waits=self.waits,
            wait_count=self.wait_count,
            last_key=self.last_key,
        )


class StateChangeImages(DynamoDBStreamChangedRecordModel):
    NewImage: StateImage
    OldImage: StateImage | None = None


class StateChangeRecord(DynamoDBStreamRecordModel):
    """A conversation state written by measure or the sweeper."""

    eventName: Literal["INSERT", "MODIFY"]
    dynamodb: StateChangeImages


def is_post_change(raw: dict[str, Any]) -> bool:
    """What MeasureFunction's FilterCriteria lets through: a post stored, replaced by its tombstone, or removed."""
    images = raw.get("dynamodb") or {}
    new_type = (images.get("NewImage") or {}).get("item_type")
    old_type = (images.get("OldImage") or {}).get("item_type")
    event = raw.get("eventName")
    return (
        (event == "INSERT" and new_type == {"S": "post"})
        or (event == "MODIFY" and old_type == {"S": "post"} and new_type == {"S": "deleted_post"})
        or (event == "REMOVE" and old_type == {"S": "post"})
    )


def is_state_change(raw: dict[str, Any]) -> bool:
    """What AggregateFunction's FilterCriteria lets through: a lane or archived wait written."""
    sort_key = ((raw.get("dynamodb") or {}).get("Keys") or {}).get("sk") or {}
    return raw.get("eventName") in ("INSERT", "MODIFY") and str(sort_key.get("S", "")).startswith("STATE#")
