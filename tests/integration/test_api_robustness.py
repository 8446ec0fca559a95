"""No bad input ever makes the API answer 5xx: query strings, paths and bodies from hypothesis."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from replyclock.models.domain import Brand
from tests.support.api import ApiClient, ApiResponse, http_event
from tests.support.builders import brand, customer
from tests.support.pipeline import Pipeline

GET_EVENTS = (
    "api_metrics_summary.json",
    "api_metrics_timeseries.json",
    "api_metrics_distribution.json",
    "api_conversations.json",
    "api_health.json",
    "api_brands.json",
)
PARAMETERS = ("brand", "channel", "priority", "from", "to", "clock", "interval", "status", "limit", "cursor", "extra")
PLAUSIBLE = st.sampled_from(
    [
        "acme",
        "x",
        "urgent",
        "pending",
        "calendar",
        "business",
        "hour",
        "day",
        "0",
        "-1",
        "201",
        "1e3",
        "2026-11-18T10:00:00Z",
        "2026-11-18T10:00:00",
        "2026-11-18",
        "0001-01-01T00:00:00+23:59",
        "9999-12-31T23:59:59-23:59",
        "1970-01-01T00:00:00Z",
        "2199-12-31T23:00:00Z",
        "1795082400",
        "99999999999999999999",
        "eyJ2IjogMX0",
        "",
        " ",
        "%00",
        "acme,acme",
    ]
)
VALUES = st.one_of(PLAUSIBLE, st.text(max_size=40))
QUERIES = st.dictionaries(st.sampled_from(PARAMETERS), VALUES, max_size=7)
FUZZ = settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_client_error_or_success(response: ApiResponse) -> None:
    assert response.status < 500, response.body
    if response.status >= 400:
        assert set(response.json()) == {"message", "field"}


@pytest.fixture
def populated(api: ApiClient, pipeline: Pipeline) -> ApiClient:
    pipeline.add_brands([Brand(id="acme", name="Acme")])
    pipeline.write([customer("1", 0, conversation="c1"), brand("2", 20, reply_to="1", conversation="c1")])
    pipeline.run()
    return api


@FUZZ
@given(event=st.sampled_from(GET_EVENTS), query=QUERIES)
def test_no_query_string_makes_a_get_route_fail(populated: ApiClient, event: str, query: dict[str, str]) -> None:
    assert_client_error_or_success(populated.call(event, query=query))


@FUZZ
@given(
    template=st.sampled_from(
        [
            "/conversations/{}/{}",
            "/brands/{}",
            "/brands/{}/sla-policy",
            "/metrics/{}",
            "/{}",
        ]
    ),
    parts=st.lists(
        st.one_of(st.text(min_size=1, max_size=30), st.sampled_from(["x", "acme", "%2F", "%ZZ"])),
        min_size=2,
        max_size=2,
    ),
)
def test_no_path_makes_a_get_route_fail(populated: ApiClient, template: str, parts: list[str]) -> None:
    path = template.format(*(quote(part, safe="%") for part in parts))

    assert_client_error_or_success(populated.call("api_brand_get.json", path=path))


JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4),
    max_leaves=12,
)
BRAND_FIELDS = ("name", "handles", "calendar", "auto_reply_patterns", "priority_rules", "other")
POLICY_FIELDS = ("targets", "channel_targets", "clock", "at_risk_fraction", "other")


@FUZZ
@given(body=st.dictionaries(st.sampled_from(BRAND_FIELDS), JSON_VALUES, max_size=5) | JSON_VALUES)
def test_no_brand_body_makes_put_fail(populated: ApiClient, body: Any) -> None:
    assert_client_error_or_success(populated.send(http_event("api_brand_put.json", body=json.dumps(body))))


@FUZZ
@given(body=st.dictionaries(st.sampled_from(POLICY_FIELDS), JSON_VALUES, max_size=4) | JSON_VALUES)
def test_no_policy_body_makes_put_fail(populated: ApiClient, body: Any) -> None:
    assert_client_error_or_success(populated.send(http_event("api_sla_policy_put.json", body=json.dumps(body))))
