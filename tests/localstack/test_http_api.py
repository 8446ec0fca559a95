"""Requests become API Gateway payload-2.0 events for the function the template routes them to."""

from __future__ import annotations

import base64
import http.client
import json

import pytest

from devtools.localstack.cloudformation import Stack
from devtools.localstack.http_api import (
    LocalHttpApi,
    Route,
    http_response,
    payload_v2_event,
    select_route,
    template_routes,
)
from devtools.localstack.resources import PLACEHOLDERS
from tests.support.fixtures import load_event


@pytest.fixture(scope="module")
def routes() -> list[Route]:
    stack = Stack("replyclock-local")
    for logical_id, resource in stack.resources.items():
        if resource["Type"] in PLACEHOLDERS:
            stack.physical[logical_id] = PLACEHOLDERS[resource["Type"]](stack, logical_id)
    return template_routes(stack)


def test_the_template_routes_every_path_of_its_http_api_to_the_api_function(routes: list[Route]) -> None:
    assert {route.function for route in routes} == {"ApiFunction"}
    assert {(route.method, route.path) for route in routes} >= {
        ("GET", "/{proxy+}"),
        ("PUT", "/{proxy+}"),
        ("GET", "/health"),
        ("GET", "/docs"),
        ("GET", "/openapi.json"),
    }


@pytest.mark.parametrize(
    ("method", "path", "route_key", "parameters"),
    [
        ("GET", "/health", "GET /health", {}),
        ("GET", "/metrics/summary", "GET /{proxy+}", {"proxy": "metrics/summary"}),
        ("PUT", "/brands/acme", "PUT /{proxy+}", {"proxy": "brands/acme"}),
        ("GET", "/brands/a%20b", "GET /{proxy+}", {"proxy": "brands/a b"}),
    ],
)
def test_a_request_takes_the_most_specific_route(
    routes: list[Route], method: str, path: str, route_key: str, parameters: dict[str, str]
) -> None:
    selected = select_route(routes, method, path)
    assert selected is not None
    route, found = selected
    assert (route.route_key, found) == (route_key, parameters)


@pytest.mark.parametrize(("method", "path"), [("POST", "/brands/acme"), ("PATCH", "/health"), ("GET", "/")])
def test_a_request_no_route_takes_gets_no_function(routes: list[Route], method: str, path: str) -> None:
    assert select_route(routes, method, path) is None


def test_route_variables_match_single_segments_and_greedy_ones_the_rest() -> None:
    route = Route("GET", "/conversations/{channel}/{id}", "F")
    assert route.match("GET", "/conversations/x/1001") == {"channel": "x", "id": "1001"}
    assert route.match("GET", "/conversations/x") is None
    assert route.match("GET", "/conversations/x/1/2") is None
    assert Route("ANY", "/files/{path+}", "F").match("PATCH", "/files/a/b") == {"path": "a/b"}


def test_the_event_has_the_payload_2_0_shape_of_events_api_metrics_summary() -> None:
    # Given a request like the one events/api_metrics_summary.json records
    recorded = load_event("api_metrics_summary.json")
    route = Route("GET", "/{proxy+}", "ApiFunction")
    query = recorded["rawQueryString"]

    # When it becomes an event
    event = payload_v2_event(
        route,
        "GET",
        "/metrics/summary",
        query,
        [("Host", "127.0.0.1:3000"), ("User-Agent", "curl/8.5.0"), ("Accept", "application/json")],
        b"",
        {"proxy": "metrics/summary"},
        "127.0.0.1",
        "127.0.0.1:3000",
    )

    # Then it carries the same fields, with a local IAM identity
    assert set(event) >= set(recorded) - {"body"}
    assert set(event["requestContext"]) >= set(recorded["requestContext"])
    assert set(event["requestContext"]["http"]) == set(recorded["requestContext"]["http"])
    assert event["queryStringParameters"] == recorded["queryStringParameters"]
    assert (event["routeKey"], event["rawPath"], event["pathParameters"]) == (
        "GET /{proxy+}",
        "/metrics/summary",
        {"proxy": "metrics/summary"},
    )
    assert event["requestContext"]["authorizer"]["iam"]["userArn"].startswith("arn:aws:iam::")
    assert event["headers"]["user-agent"] == "curl/8.5.0"


def test_repeated_query_parameters_and_headers_are_joined_with_commas_and_cookies_listed() -> None:
    event = payload_v2_event(
        Route("GET", "/{proxy+}", "F"),
        "GET",
        "/x",
        "a=1&a=2&b=",
        [("X-Tag", "one"), ("x-tag", "two"), ("Cookie", "s=1; t=2")],
        b"",
        {},
        "127.0.0.1",
        "localhost",
    )
    assert event["queryStringParameters"] == {"a": "1,2", "b": ""}
    assert event["headers"]["x-tag"] == "one,two"
    assert event["cookies"] == ["s=1", "t=2"]
    assert "pathParameters" not in event and "body" not in event


def test_text_bodies_are_passed_as_text_and_binary_ones_base64_encoded() -> None:
    route = Route("PUT", "/{proxy+}", "F")
    text = payload_v2_event(route, "PUT", "/b", "", [("content-type", "application/json")], b'{"a": 1}', {}, "", "")
    binary = payload_v2_event(route, "PUT", "/b", "", [("content-type", "image/png")], b"\x89PNG\xff", {}, "", "")
    assert (text["body"], text["isBase64Encoded"]) == ('{"a": 1}', False)
    assert (base64.b64decode(binary["body"]), binary["isBase64Encoded"]) == (b"\x89PNG\xff", True)


def test_responses_translate_status_headers_cookies_and_base64_bodies() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Content-Type": "application/json"},
            "cookies": ["a=1"],
            "body": base64.b64encode(b'{"ok": true}').decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert ("set-cookie", "a=1") in response.headers
    assert json.loads(response.body) == {"ok": True}


def test_a_result_without_status_code_is_the_json_body_of_a_200() -> None:
    response = http_response({"hello": "world"})
    assert (response.status, json.loads(response.body)) == (200, {"hello": "world"})


@pytest.mark.parametrize("method", ["TRACE", "QUERY", "CONNECT"])
def test_a_method_http_server_does_not_know_gets_the_gateway_s_404(method: str) -> None:
    api = LocalHttpApi([Route("GET", "/health", "F")], lambda function, event: {}, port=0)
    api.start()
    try:
        connection = http.client.HTTPConnection(api.url.removeprefix("http://"), timeout=10)
        connection.request(method, "/health")
        response = connection.getresponse()
        assert (response.status, json.loads(response.read())) == (404, {"message": "Not Found"})
        connection.close()
    finally:
        api.stop()
