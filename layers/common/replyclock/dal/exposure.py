"""Open exposure per brand: what the sweeper last counted of each brand's open waits, one item per brand.

The sweeper reads every open wait from the open-waits index each minute (with each wait's exposure
projected); it writes here, per brand, the open waits and their summed exposure, in all and per
channel, so GET /metrics/summary answers them with one GetItem instead of reading open waits.
Items live at pk "EXPOSURE", sk "BRAND#<id>"; no stream consumer takes them (measure takes posts,
aggregate STATE# items).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, query_items, translate

EXPOSURE_PK = "EXPOSURE"
EXPOSURE_SK_PREFIX = "BRAND#"
EXPOSURE_ITEM_TYPE = "open_exposure"


@dataclass(frozen=True)
class ChannelExposure:
    open_waits: int = 0
    open_exposure: int = 0


@dataclass(frozen=True)
class BrandExposure:
    brand_id: str
    as_of: datetime
    open_waits: int = 0
    open_exposure: int = 0
    channels: dict[str, ChannelExposure] = field(default_factory=dict)


def exposure_to_item(exposure: BrandExposure) -> dict[str, Any]:
    return {
        "pk": EXPOSURE_PK,
        "sk": f"{EXPOSURE_SK_PREFIX}{exposure.brand_id}",
        "item_type": EXPOSURE_ITEM_TYPE,
        "as_of": exposure.as_of.isoformat(),
        "open_waits": exposure.open_waits,
        "open_exposure": exposure.open_exposure,
        "channels": {
            channel: {"open_waits": counts.open_waits, "open_exposure": counts.open_exposure}
            for channel, counts in exposure.channels.items()
        },
    }


def exposure_from_item(item: dict[str, Any]) -> BrandExposure:
    channels = item.get("channels") or {}
    return BrandExposure(
        brand_id=str(item["sk"]).removeprefix(EXPOSURE_SK_PREFIX),
        as_of=datetime.fromisoformat(str(item["as_of"])),
        open_waits=int(item.get("open_waits", 0)),
        open_exposure=int(item.get("open_exposure", 0)),
        channels={
            str(channel): ChannelExposure(int(counts.get("open_waits", 0)), int(counts.get("open_exposure", 0)))
            for channel, counts in channels.items()
        },
    )


class ExposureStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put_all(self, exposures: Iterable[BrandExposure]) -> None:
        try:
            with self._table.batch_writer() as batch:
                for exposure in exposures:
                    batch.put_item(Item=exposure_to_item(exposure))
        except ClientError as error:
            raise translate(error) from error

    def brand_ids(self) -> list[str]:
        """The brands with an item (one Query of one partition: as many items as brands)."""
        items = query_items(self._table, KeyConditionExpression=Key("pk").eq(EXPOSURE_PK), ProjectionExpression="sk")
        return sorted(str(item["sk"]).removeprefix(EXPOSURE_SK_PREFIX) for item in items)

    def get(self, brand_id: str) -> BrandExposure | None:
        try:
            item = self._table.get_item(Key={"pk": EXPOSURE_PK, "sk": f"{EXPOSURE_SK_PREFIX}{brand_id}"}).get("Item")
        except ClientError as error:
            raise translate(error) from error
        return exposure_from_item(item) if item else None
