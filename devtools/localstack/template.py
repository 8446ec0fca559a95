"""template.yaml as the single source of truth for tests and the local stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
TEMPLATE_PATH = REPO_ROOT / "template.yaml"

# Properties that describe a table but that CreateTable does not take (or moto ignores).
_NOT_FOR_CREATE_TABLE = {
    "PointInTimeRecoverySpecification",
    "TimeToLiveSpecification",
    "Tags",
    "ContributorInsightsSpecification",
}


class _TemplateLoader(yaml.CSafeLoader):
    """YAML with CloudFormation's short forms (!Ref, !GetAtt a.b, !Sub, ...) read as their long forms.

    It reads template.yaml exactly as cfn-lint's decoder does (compared when this replaced it), in a
    few milliseconds where importing cfn-lint takes one to two seconds of every `replyclock run`'s start.
    """


def _intrinsic(loader: _TemplateLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    value: Any
    if isinstance(node, yaml.ScalarNode):
        value = loader.construct_scalar(node)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    else:
        assert isinstance(node, yaml.MappingNode)
        value = loader.construct_mapping(node, deep=True)
    if suffix == "GetAtt" and isinstance(value, str):
        value = value.split(".", 1)
    return {suffix if suffix in ("Ref", "Condition") else f"Fn::{suffix}": value}


_TemplateLoader.add_multi_constructor("!", _intrinsic)


@lru_cache(maxsize=1)
def load_template() -> dict[str, Any]:
    try:
        template = yaml.load(TEMPLATE_PATH.read_text(encoding="utf-8"), Loader=_TemplateLoader)
    except yaml.YAMLError as error:
        raise ValueError(f"cannot read {TEMPLATE_PATH}: {error}") from None
    if not isinstance(template, dict):
        raise ValueError(f"cannot read {TEMPLATE_PATH}: not a mapping")
    # Through JSON, as a deployed template is: plain dicts, lists, strings and numbers.
    return json.loads(json.dumps(template))  # type: ignore[no-any-return]


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
