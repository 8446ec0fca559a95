"""Brand configuration: one item per brand in a single small partition, read whole."""

from __future__ import annotations

import json
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, query_items, translate
from replyclock.models.domain import Brand

BRANDS_PK = "BRANDS"
BRAND_ITEM_TYPE = "brand"


def brand_key(brand_id: str) -> dict[str, str]:
    return {"pk": BRANDS_PK, "sk": f"BRAND#{brand_id}"}


class BrandStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, brand: Brand) -> None:
        # The whole configuration is one JSON document: it is read and written as a unit.
        item = {**brand_key(brand.id), "item_type": BRAND_ITEM_TYPE, "config": brand.model_dump_json()}
        try:
            self._table.put_item(Item=item)
        except ClientError as error:
            raise translate(error) from error

    def get_with_config(self, brand_id: str) -> tuple[Brand, str] | None:
        """The brand and its stored document, which put_if_unchanged takes to detect a concurrent write."""
        try:
            found = self._table.get_item(Key=brand_key(brand_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return (Brand.model_validate_json(str(item["config"])), str(item["config"])) if item else None

    def put_if_unchanged(self, brand: Brand, previous_config: str | None) -> None:
        """Write the brand if its stored document is still `previous_config` (None: absent); else ConditionFailed."""
        item = {**brand_key(brand.id), "item_type": BRAND_ITEM_TYPE, "config": brand.model_dump_json()}
        if previous_config is None:
            condition: dict[str, Any] = {"ConditionExpression": "attribute_not_exists(pk)"}
        else:
            condition = {
                "ConditionExpression": "#config = :previous",
                "ExpressionAttributeNames": {"#config": "config"},
                "ExpressionAttributeValues": {":previous": previous_config},
            }
        try:
            self._table.put_item(Item=item, **condition)
        except ClientError as error:
            raise translate(error) from error

    def get(self, brand_id: str) -> Brand | None:
        try:
            found = self._table.get_item(Key=brand_key(brand_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return Brand.model_validate_json(str(item["config"])) if item else None

    def all(self) -> list[Brand]:
        items = query_items(self._table, KeyConditionExpression=Key("pk").eq(BRANDS_PK))
        return [Brand.model_validate(json.loads(str(item["config"]))) for item in items]
