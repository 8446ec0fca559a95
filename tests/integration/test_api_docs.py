"""The API documents itself: a valid OpenAPI document at /openapi.json listing every route, Swagger UI at /docs."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from openapi_spec_validator import validate

from tests.support.api import ApiClient
from tests.support.fixtures import EVENTS
from tests.support.pipeline import Pipeline

# The public contract: every route the API serves (docs routes aside).
ROUTES = {
    ("GET", "/metrics/summary"),
    ("GET", "/metrics/timeseries"),
    ("GET", "/metrics/distribution"),
    ("GET", "/metrics/recovery"),
    ("GET", "/conversations"),
    ("GET", "/conversations/{channel}/{conversation_id}"),
    ("DELETE", "/conversations/{channel}/{conversation_id}/posts/{post_id}"),
    ("GET", "/brands"),
    ("GET", "/brands/{brand_id}"),
    ("PUT", "/brands/{brand_id}"),
    ("GET", "/brands/{brand_id}/sla-policy"),
    ("PUT", "/brands/{brand_id}/sla-policy"),
    ("GET", "/brands/{brand_id}/eta"),
    ("GET", "/brands/{brand_id}/surges"),
    ("GET", "/sources"),
    ("GET", "/sources/{source_id}"),
    ("PUT", "/sources/{source_id}"),
    ("DELETE", "/sources/{source_id}"),
    ("GET", "/health"),
}
SUMMARY_CONTRACT = {
    "mentions",
    "responded",
    "response_rate",
    "first_response_seconds",
    "sla",
    "next_response_seconds",
    "next_sla",
    "window",
    "clock",
}


@pytest.fixture
def document(api: ApiClient) -> dict[str, Any]:
    response = api.call("api_openapi.json")
    assert response.status == 200 and response.headers["Content-Type"] == "application/json"
    return response.json()  # type: ignore[no-any-return]


def registered_routes(api: ApiClient) -> set[tuple[str, str]]:
    routes = api.app._static_routes + api.app._dynamic_routes
    return {(route.method, route.openapi_path) for route in routes if route.include_in_schema}


def test_openapi_document_is_valid(document: dict[str, Any]) -> None:
    validate(document)


def test_openapi_document_lists_every_route(api: ApiClient, document: dict[str, Any]) -> None:
    documented = {(method.upper(), path) for path, item in document["paths"].items() for method in item}

    assert documented == ROUTES
    assert registered_routes(api) == ROUTES


def test_summary_schema_carries_the_contract_fields(document: dict[str, Any]) -> None:
    summary = document["components"]["schemas"]["SummaryResponse"]
    latency = document["components"]["schemas"]["LatencyStats"]
    sla = document["components"]["schemas"]["SLAStats"]

    assert SUMMARY_CONTRACT <= set(summary["properties"])
    assert {"mean", "p50", "p90", "p95", "p99", "max"} <= set(latency["properties"])
    assert {"met", "breached", "pending", "compliance"} <= set(sla["properties"])


def test_every_error_answer_is_documented_as_message_and_field(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            for status, response in operation["responses"].items():
                if int(status) >= 400:
                    schema = response["content"]["application/json"]["schema"]
                    assert schema == {"$ref": "#/components/schemas/ErrorBody"}, (method, path, status)


def test_every_route_documents_the_503_of_a_throttled_table(document: dict[str, Any]) -> None:
    for path, item in document["paths"].items():
        for method, operation in item.items():
            throttled = operation["responses"].get("503")
            assert throttled is not None, (method, path)
            assert set(throttled["headers"]) == {"Retry-After"}


def test_open_hours_are_documented_as_the_wall_clock_strings_the_api_answers(
    api: ApiClient, pipeline: Pipeline, document: dict[str, Any]
) -> None:
    # JSON Schema's "time" format is a time with a UTC offset, which open hours never have.
    api.call("api_brand_put.json")
    weekly_hours = api.call("api_brand_get.json").json()["calendar"]["weekly_hours"]
    documented = document["components"]["schemas"]["OpenInterval"]["properties"]

    for field in ("start", "end"):
        assert "format" not in documented[field]
        pattern = re.compile(documented[field]["pattern"])
        answered = [interval[field] for intervals in weekly_hours.values() for interval in intervals]
        assert answered and all(pattern.fullmatch(value) for value in answered), answered


def test_docs_event_serves_swagger_ui(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_docs.json")

    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/html")
    assert "swagger" in response.body.lower() and "/metrics/summary" in response.body


def test_unknown_route_is_a_json_404(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_health.json", path="/nowhere")
    wrong_method = api.call("api_health.json", method="DELETE")

    assert response.status == 404 and response.json() == {"message": "no route GET /nowhere", "field": None}
    assert wrong_method.status == 404


def test_every_route_family_has_an_event_file() -> None:
    names = {path.name for path in Path(EVENTS).glob("api_*.json")}

    assert {
        "api_metrics_summary.json",
        "api_metrics_timeseries.json",
        "api_metrics_distribution.json",
        "api_conversations.json",
        "api_conversation_detail.json",
        "api_brands.json",
        "api_brand_get.json",
        "api_brand_put.json",
        "api_sla_policy_get.json",
        "api_sla_policy_put.json",
        "api_sources.json",
        "api_source_get.json",
        "api_source_put.json",
        "api_source_delete.json",
        "api_health.json",
        "api_openapi.json",
        "api_docs.json",
    } <= names
