"""template.yaml as the single source of truth for tests and the local stack."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from cfnlint.decode import decode

REPO_ROOT = Path(__file__).resolve().parent.parent
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


def stream_mappings() -> list[StreamMapping]:
    template = load_template()
    defaults = {name: spec.get("Default") for name, spec in template.get("Parameters", {}).items()}
    mappings = []
    for name, resource in resources_of_type("AWS::Serverless::Function").items():
        properties = resource["Properties"]
        module, _, function_name = properties["Handler"].rpartition(".")
        for event in properties.get("Events", {}).values():
            if event["Type"] != "DynamoDB":
                continue
            spec = event["Properties"]
            on_failure = spec.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            mappings.append(
                StreamMapping(
                    function=name,
                    handler_path=REPO_ROOT / properties["CodeUri"] / f"{module.replace('.', '/')}.py",
                    handler_name=function_name,
                    batch_size=int(spec.get("BatchSize", 100)),
                    maximum_retry_attempts=int(_resolve(spec.get("MaximumRetryAttempts", -1), defaults)),
                    bisect_on_error=bool(spec.get("BisectBatchOnFunctionError", False)),
                    report_batch_item_failures="ReportBatchItemFailures" in spec.get("FunctionResponseTypes", []),
                    filter_patterns=tuple(
                        json.loads(entry["Pattern"]) for entry in spec.get("FilterCriteria", {}).get("Filters", [])
                    ),
                    on_failure_queue=on_failure["Fn::GetAtt"][0] if isinstance(on_failure, dict) else None,
                )
            )
    return mappings


def _resolve(value: Any, parameters: dict[str, Any]) -> Any:
    if isinstance(value, dict) and "Ref" in value:
        return parameters[value["Ref"]]
    return value
