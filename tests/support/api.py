"""Calling functions/api/app.py as API Gateway does: events from events/, changed only where a test says."""

from __future__ import annotations

import copy
import json
import sys
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

import pytest

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.api.dependencies import api_settings, current_time
from replyclock.settings import Settings, get_settings
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

API_APP = REPO_ROOT / "functions" / "api" / "app.py"
# "Now" for API tests: a week after tests.support.builders.T0, so default windows cover its posts.
API_NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
_KEEP: Any = object()


@dataclass(frozen=True)
class ApiResponse:
    status: int
    headers: Mapping[str, str]
    body: str

    def json(self) -> Any:
        return json.loads(self.body)


def http_event(
    name: str,
    *,
    method: str | None = None,
    path: str | None = None,
    query: Mapping[str, str] | None = _KEEP,
    body: Any = _KEEP,
    headers: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """An events/ file with its method, path, query string, body or headers replaced."""
    event = copy.deepcopy(load_event(name))
    http = event["requestContext"]["http"]
    if method is not None:
        http["method"] = method
    if path is not None:
        event["rawPath"] = http["path"] = path
        if "pathParameters" in event:
            event["pathParameters"] = {"proxy": path.lstrip("/")}
    if query is not _KEEP:
        event["rawQueryString"] = urlencode(query or {}, quote_via=quote)
        if query:
            event["queryStringParameters"] = dict(query)
        else:
            event.pop("queryStringParameters", None)
    if body is not _KEEP:
        if body is None:
            event.pop("body", None)
        else:
            event["body"] = body if isinstance(body, str) else json.dumps(body)
            event["headers"]["content-type"] = "application/json"
    if headers is not None:
        event["headers"].update(headers)
    return event


class ApiClient:
    """The api function in-process, with its clock and settings overridable."""

    def __init__(self) -> None:
        self.handler = load_handler(API_APP)
        self.app = sys.modules[f"_replyclock_function_{API_APP.parent.name}"].app
        self.now = API_NOW
        self.app.dependency_overrides[current_time] = lambda: self.now
        self.app.dependency_overrides[api_settings] = get_settings

    def with_settings(self, **changes: Any) -> None:
        settings = get_settings().model_copy(update=changes)
        self.app.dependency_overrides[api_settings] = lambda: Settings.model_validate(settings.model_dump())

    def close(self) -> None:
        self.app.dependency_overrides.clear()

    def send(self, event: dict[str, Any]) -> ApiResponse:
        response = self.handler(event, FakeLambdaContext(function_name="ApiFunction"))
        return ApiResponse(response["statusCode"], response.get("headers", {}), response.get("body", ""))

    def call(self, name: str, **changes: Any) -> ApiResponse:
        return self.send(http_event(name, **changes))


@pytest.fixture
def api(pipeline: Pipeline) -> Iterator[ApiClient]:
    client = ApiClient()
    yield client
    client.close()


# The metrics routes whose answers must not depend on which buckets a window is read from.
METRICS_EVENTS = ("api_metrics_summary.json", "api_metrics_distribution.json", "api_metrics_timeseries.json")


def metrics_query(event: str, start: datetime, end: datetime, channel: str | None) -> dict[str, str]:
    """A metrics request of brand acme over [start, end), filtered on a channel or not (daily points for series)."""
    query = {"brand": "acme", "from": start.isoformat(), "to": end.isoformat()}
    query |= {"channel": channel} if channel else {}
    query |= {"interval": "day"} if event == "api_metrics_timeseries.json" else {}
    return query


def answer_as_planned(api: ApiClient, event: str, query: dict[str, str]) -> str:
    """The route's answer, reading the buckets its read plan chooses."""
    response = api.call(event, query=query)
    assert response.status == 200, response.body
    return response.body


def answer_from_hours_alone(api: ApiClient, event: str, query: dict[str, str]) -> str:
    """The route's answer, reading every bucket of the window from per-channel hourly buckets."""
    from replyclock.logic import metrics

    planned = metrics.read_plan
    with pytest.MonkeyPatch.context() as patches:
        patches.setattr(metrics, "read_plan", lambda window, daily, **_: planned(window, daily=False))
        return answer_as_planned(api, event, query)
