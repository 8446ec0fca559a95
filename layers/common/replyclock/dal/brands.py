"""Brand configuration: one small partition holding an item per brand and an item per SLA policy version.

A brand's configuration (everything but its SLA policies) is one JSON document, read and written as
a unit. Each SLA policy version is an item of its own (`POLICY#<brand>#<version>`), written once and
never changed, so no item grows with a brand's history: a brand's 12th 20 KB policy no longer breaks
its 400 KB item. Brand ids cannot hold '#', so `POLICY#acme#` never matches another brand's policies.
Items written before policies moved out keep theirs in the document; they are read as they are and
moved out on the brand's next write.
"""

from __future__ import annotations

import json
from collections import defaultdict
from typing import Any

from boto3.dynamodb.conditions import Key
from botocore.exceptions import ClientError

from replyclock.dal.table import get_table, put_if, query_items, translate
from replyclock.models.domain import Brand, SLAPolicy

BRANDS_PK = "BRANDS"
BRAND_ITEM_TYPE = "brand"
POLICY_ITEM_TYPE = "brand_policy"
_BRAND_PREFIX = "BRAND#"
_POLICY_PREFIX = "POLICY#"


def brand_key(brand_id: str) -> dict[str, str]:
    return {"pk": BRANDS_PK, "sk": f"{_BRAND_PREFIX}{brand_id}"}


def policy_key(brand_id: str, version: int) -> dict[str, str]:
    return {"pk": BRANDS_PK, "sk": f"{_POLICY_PREFIX}{brand_id}#{version:010d}"}


def brand_document(brand: Brand) -> str:
    """The stored configuration: the brand without its SLA policies (those are items of their own)."""
    return brand.model_dump_json(exclude={"sla_policies"})


def _assemble(config: str, policies: list[SLAPolicy]) -> Brand:
    fields: dict[str, Any] = json.loads(config)
    # A document from before policies moved out carries its own: those count too, until they are moved.
    versions = {int(policy["version"]): policy for policy in fields.get("sla_policies", [])}
    versions.update({policy.version: policy.model_dump() for policy in policies})
    if versions:
        fields["sla_policies"] = list(versions.values())
    return Brand.model_validate(fields)


def _policy_item(brand_id: str, policy: SLAPolicy) -> dict[str, Any]:
    return {**policy_key(brand_id, policy.version), "item_type": POLICY_ITEM_TYPE, "policy": policy.model_dump_json()}


class BrandStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    def put(self, brand: Brand) -> None:
        """Write the brand and every policy version it carries, unconditionally (seeding, tests, tools)."""
        for policy in brand.sla_policies:
            self._put(_policy_item(brand.id, policy))
        self._put({**brand_key(brand.id), "item_type": BRAND_ITEM_TYPE, "config": brand_document(brand)})

    def _put(self, item: dict[str, Any]) -> None:
        try:
            self._table.put_item(Item=item)
        except ClientError as error:
            raise translate(error) from error

    def _document(self, brand_id: str) -> str | None:
        try:
            found = self._table.get_item(Key=brand_key(brand_id), ConsistentRead=True)
        except ClientError as error:
            raise translate(error) from error
        item = found.get("Item")
        return str(item["config"]) if item else None

    def policies(self, brand_id: str) -> list[SLAPolicy]:
        items = query_items(
            self._table,
            KeyConditionExpression=Key("pk").eq(BRANDS_PK) & Key("sk").begins_with(f"{_POLICY_PREFIX}{brand_id}#"),
            ConsistentRead=True,
        )
        return [SLAPolicy.model_validate_json(str(item["policy"])) for item in items]

    def exists(self, brand_id: str) -> bool:
        return self._document(brand_id) is not None

    def get_with_config(self, brand_id: str) -> tuple[Brand, str] | None:
        """The brand and its stored document, which put_if_unchanged takes to detect a concurrent write."""
        config = self._document(brand_id)
        if config is None:
            return None
        return _assemble(config, self.policies(brand_id)), config

    def get(self, brand_id: str) -> Brand | None:
        found = self.get_with_config(brand_id)
        return found[0] if found else None

    def put_if_unchanged(self, brand: Brand, previous_config: str | None) -> None:
        """Write the brand's document if the stored one is still `previous_config` (None: absent); else ConditionFailed.

        Policy versions the brand carries that are not stored yet (a new brand's first, or those of a
        document from before policies moved out) are written first: a version is immutable, so writing
        it twice is harmless and a lost race leaves no half-written brand behind.
        """
        stored = {policy.version for policy in self.policies(brand.id)} if previous_config is not None else set()
        for policy in brand.sla_policies:
            if policy.version not in stored:
                put_if(self._table, _policy_item(brand.id, policy), "attribute_not_exists(sk)")
        item = {**brand_key(brand.id), "item_type": BRAND_ITEM_TYPE, "config": brand_document(brand)}
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

    def add_policy(self, brand_id: str, policy: SLAPolicy) -> bool:
        """Store a new policy version unless that version exists already (False: someone else took it)."""
        return put_if(self._table, _policy_item(brand_id, policy), "attribute_not_exists(sk)")

    def all(self) -> list[Brand]:
        """Every brand with its policies: one Query of the brands partition."""
        documents: dict[str, str] = {}
        policies: dict[str, list[SLAPolicy]] = defaultdict(list)
        for item in query_items(self._table, KeyConditionExpression=Key("pk").eq(BRANDS_PK)):
            sort_key = str(item["sk"])
            if sort_key.startswith(_BRAND_PREFIX):
                documents[sort_key.removeprefix(_BRAND_PREFIX)] = str(item["config"])
            elif sort_key.startswith(_POLICY_PREFIX):
                brand_id = sort_key.removeprefix(_POLICY_PREFIX).rpartition("#")[0]
                policies[brand_id].append(SLAPolicy.model_validate_json(str(item["policy"])))
        return [_assemble(config, policies.get(brand_id, [])) for brand_id, config in documents.items()]
