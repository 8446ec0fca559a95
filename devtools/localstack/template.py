"""template.yaml as the single source of truth for tests and the local stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Properties that describe a table but that CreateTable does not take (or moto ignores).
_NOT_FOR_CREATE_TABLE = {
    "PointInTimeRecoverySpecification",
    "TimeToLiveSpecification",
    "Tags",
    "ContributorInsightsSpecification",
}


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    template, matches = decode(str(TEMPLATE_PATH))
    if template is None:
        raise ValueError(f"cannot read {TEMPLATE_PATH}: {matches}")
    return json.loads(json.dumps(template))


def resources_of_type(resource_type: str) -> dict[str, dict[str, Any]]:
    return {
        name: resource
        for name, resource in load_template()["Resources"].items()
        if resource.get("Type") == resource_type
    }


def create_table_arguments(logical_id: str, table_name: str) -> dict[str, Any]:
    """CreateTable arguments for a table resource of the template."""
    properties = dict(load_template()["Resources"][logical_id]["Properties"])
    arguments = {key: value for key, value in properties.items() if key not in _NOT_FOR_CREATE_TABLE}
    arguments["TableName"] = table_name
    if "SSESpecification" in arguments:
        # CloudFormation spells it SSEEnabled, the API Enabled.
        sse = dict(arguments["SSESpecification"])
        arguments["SSESpecification"] = {"Enabled": sse.pop("SSEEnabled", True), **sse}
    if "StreamSpecification" in arguments:
        arguments["StreamSpecification"] = {"StreamEnabled": True, **arguments["StreamSpecification"]}
    return arguments


@dataclass(frozen=True)
class StreamMapping:
    """A function's DynamoDB stream event source, as the template declares it."""

    function: str
    handler_path: Path
    handler_name: str
    batch_size: int
    maximum_retry_attempts: int
    bisect_on_error: bool
    report_batch_item_failures: bool
    filter_patterns: tuple[dict[str, Any], ...]
    on_failure_queue: str | None
