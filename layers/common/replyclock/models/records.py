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


class PostChange(DynamoDBStreamChangedRecordModel):
    NewImage: PostImage | None = None
    OldImage: PostImage | None = None


class PostRecord(DynamoDBStreamRecordModel):
    """A post stored for the first time, or removed (deleted upstream)."""

    eventName: Literal["INSERT", "REMOVE"]
    dynamodb: PostChange

    @property
    def post(self) -> PostImage:
        image = self.dynamodb.NewImage if self.eventName == "INSERT" else self.dynamodb.OldImage
        if image is None:
            raise ValueError(f"a post {self.eventName} record without its image")
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
    """What MeasureFunction's FilterCriteria lets through: a post stored or removed."""
    images = raw.get("dynamodb") or {}
    image = images.get("NewImage") if raw.get("eventName") == "INSERT" else images.get("OldImage")
    return raw.get("eventName") in ("INSERT", "REMOVE") and (image or {}).get("item_type") == {"S": "post"}


def is_state_change(raw: dict[str, Any]) -> bool:
    """What AggregateFunction's FilterCriteria lets through: a lane or archived wait written."""
    sort_key = ((raw.get("dynamodb") or {}).get("Keys") or {}).get("sk") or {}
    return raw.get("eventName") in ("INSERT", "MODIFY") and str(sort_key.get("S", "")).startswith("STATE#")
