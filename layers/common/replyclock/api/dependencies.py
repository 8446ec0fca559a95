"""What routes get injected (Powertools Depends), so tests can replace the clock or the settings."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated

from aws_lambda_powertools.event_handler.depends import Depends

from replyclock.dal.aggregates import BucketStore
from replyclock.dal.brands import BrandStore
from replyclock.dal.conversations import ConversationStore
from replyclock.dal.exposure import ExposureStore
from replyclock.dal.posts import PostStore
from replyclock.dal.rollups import RollupStore
from replyclock.settings import Settings, get_settings


def current_time() -> datetime:
    """The request's "now"; tests override it through app.dependency_overrides."""
    return datetime.now(UTC)


def api_settings() -> Settings:
    return get_settings()


@dataclass(frozen=True)
class Stores:
    table_name: str
    buckets: BucketStore
    brands: BrandStore
    conversations: ConversationStore
    posts: PostStore
    rollups: RollupStore
    exposure: ExposureStore


def stores(settings: Annotated[Settings, Depends(api_settings)]) -> Stores:
    table = settings.table_name
    return Stores(
        table,
        BucketStore(table),
        BrandStore(table),
        ConversationStore(table),
        PostStore(table),
        RollupStore(table),
        ExposureStore(table),
    )


Now = Annotated[datetime, Depends(current_time)]
StoresDependency = Annotated[Stores, Depends(stores)]
SettingsDependency = Annotated[Settings, Depends(api_settings)]
