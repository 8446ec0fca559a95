"""The template's HTTP API on 127.0.0.1: requests in, API Gateway payload-2.0 events to the function, responses out.

Routes come from the template: the paths of each AWS::Serverless::HttpApi's DefinitionBody
(following its x-amazon-apigateway-integration to the function it names) and functions'
`Type: HttpApi` events. A request goes to the most specific route, as API Gateway picks it:
literal paths before paths with variables before greedy ones, a method before ANY. Like
`sam local start-api`, authorizers are not run: every request carries a local IAM identity.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from devtools.localstack.cloudformation import ACCOUNT_ID, Stack
from devtools.localstack.functions import FunctionError

# What requestContext.authorizer.iam carries for every local request.
LOCAL_IDENTITY = {
    "accessKey": "ASIALOCALSTACKEXAMPLE",
    "accountId": ACCOUNT_ID,
    "callerId": "AIDALOCALSTACKEXAMPLE",
    "cognitoIdentity": None,
    "principalOrgId": None,
    "userArn": f"arn:aws:iam::{ACCOUNT_ID}:user/local-developer",
    "userId": "AIDALOCALSTACKEXAMPLE",
}
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")
_TEXT_TYPES = re.compile(r"^(text/|application/(json|xml|x-www-form-urlencoded|javascript)|[^;]*\+(json|xml))", re.I)
_MAX_BODY_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Route:
    method: str  # upper case, or ANY
    path: str  # the template's path, e.g. /{proxy+}, or $default
    function: str
    payload_version: str = "2.0"

    @property
    def route_key(self) -> str:
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"

    @property
    def _segments(self) -> list[str]:
        return [segment for segment in self.path.split("/") if segment]

    def match(self, method: str, path: str) -> dict[str, str] | None:
        """The path parameters when this route takes the request, else None."""
        if self.method not in ("ANY", method):
            return None
        if self.path == "$default":
            return {}
        parts = [part for part in path.split("/") if part]
        parameters: dict[str, str] = {}
        segments = self._segments
        for position, segment in enumerate(segments):
            variable = re.fullmatch(r"\{([^}+]+)(\+?)\}", segment)
            if variable and variable.group(2):
                rest = parts[position:]
                if not rest:
                    return None
                parameters[variable.group(1)] = unquote("/".join(rest))
                return parameters
            if position >= len(parts):
                return None
            if variable:
                parameters[variable.group(1)] = unquote(parts[position])
            elif segment != parts[position]:
                return None
        return parameters if len(parts) == len(segments) else None

    def specificity(self) -> tuple[int, int, int, int]:
        """Higher wins: not $default, not greedy, more literal segments, a method rather than ANY."""
        segments = self._segments
        greedy = any(segment.endswith("+}") for segment in segments)
        literals = sum(not segment.startswith("{") for segment in segments)
        return (self.path != "$default", not greedy, literals, self.method != "ANY")


def template_routes(stack: Stack) -> list[Route]:
    function_by_arn = {
        physical.attributes.get("Arn"): logical_id
        for logical_id, physical in stack.physical.items()
        if stack.resources.get(logical_id, {}).get("Type", "").endswith("Function")
    }
    routes: list[Route] = []
    for logical_id in stack.resources_of_type("AWS::Serverless::HttpApi"):
        definition = stack.resolve(stack.resources[logical_id].get("Properties", {}).get("DefinitionBody", {}))
        for path, operations in definition.get("paths", {}).items():
            for method, operation in operations.items():
                name = "ANY" if method == "x-amazon-apigateway-any-method" else method.upper()
                if method.lower() not in _METHODS and name != "ANY":
                    continue
                integration = _follow_ref(definition, operation.get("x-amazon-apigateway-integration", {}))
                function = function_by_arn.get(str(integration.get("uri", "")))
                if function is not None:
                    version = str(integration.get("payloadFormatVersion", "2.0"))
                    routes.append(Route(name, path, function, version))
    for logical_id, resource in stack.resources_of_type("AWS::Serverless::Function").items():
        for event in resource.get("Properties", {}).get("Events", {}).values():
            if event.get("Type") == "HttpApi":
                properties = stack.resolve(event.get("Properties", {}))
                method = str(properties.get("Method", "ANY")).upper()
                method = "ANY" if method in ("ANY", "X-AMAZON-APIGATEWAY-ANY-METHOD") else method
                version = str(properties.get("PayloadFormatVersion", "2.0"))
                routes.append(Route(method, str(properties.get("Path", "$default")), logical_id, version))
    return sorted(routes, key=Route.specificity, reverse=True)


def _follow_ref(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    reference = node.get("$ref")
    if not isinstance(reference, str) or not reference.startswith("#/"):
        return node
    target: Any = document
    for part in reference[2:].split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return dict(target)


def select_route(routes: Iterable[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:  # most specific first
        parameters = route.match(method, path)
        if parameters is not None:
            return route, parameters
    return None


def payload_v2_event(
    route: Route,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Iterable[tuple[str, str]],
    body: bytes,
    path_parameters: dict[str, str],
    source_ip: str,
    host: str,
) -> dict[str, Any]:
    """The event API Gateway sends for this request (payload format 2.0)."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        name = name.lower()
        if name == "cookie":
            cookies.extend(part.strip() for part in value.split(";") if part.strip())
            continue
        joined[name] = f"{joined[name]},{value}" if name in joined else value
    query: dict[str, str] = {}
    for name, value in parse_qsl(raw_query, keep_blank_values=True):
        query[name] = f"{query[name]},{value}" if name in query else value
    now = datetime.now(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route.route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
        "headers": joined,
        "requestContext": {
            "accountId": ACCOUNT_ID,
            "apiId": "local",
            "authorizer": {"iam": dict(LOCAL_IDENTITY)},
            "domainName": host,
            "domainPrefix": host.split(".", 1)[0].split(":", 1)[0],
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": source_ip,
                "userAgent": joined.get("user-agent", ""),
            },
            "requestId": uuid.uuid4().hex[:16],
            "routeKey": route.route_key,
            "stage": "$default",
            "time": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
            "timeEpoch": int(now.timestamp() * 1000),
        },
        "isBase64Encoded": False,
    }
    if cookies:
        event["cookies"] = cookies
    if query:
        event["queryStringParameters"] = query
    if path_parameters:
        event["pathParameters"] = path_parameters
    if body:
        content_type = joined.get("content-type", "")
        try:
            text = body.decode("utf-8")
        except UnicodeDecodeError:
            text = None
        if text is not None and (not content_type or _TEXT_TYPES.match(content_type)):
            event["body"] = text
        else:
            event["body"] = base64.b64encode(body).decode("ascii")
            event["isBase64Encoded"] = True
    return event


@dataclass(frozen=True)
class HttpResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(result: Any) -> HttpResponse:
    """What API Gateway answers for a function's payload-2.0 result."""
    if not isinstance(result, dict) or "statusCode" not in result:
        # A result without statusCode is the body itself, as JSON.
        return HttpResponse(200, [("content-type", "application/json")], json.dumps(result).encode())
    body = result.get("body") or ""
    try:
        payload = base64.b64decode(body) if result.get("isBase64Encoded") else str(body).encode()
        status = int(result["statusCode"])
    except (ValueError, TypeError):
        return _error_response(HTTPStatus.INTERNAL_SERVER_ERROR)
    headers = [(str(name), str(value)) for name, value in (result.get("headers") or {}).items()]
    for name, values in (result.get("multiValueHeaders") or {}).items():
        headers.extend((str(name), str(value)) for value in values)
    headers.extend(("set-cookie", str(cookie)) for cookie in result.get("cookies") or [])
    return HttpResponse(status, headers, payload)


def _error_response(status: HTTPStatus) -> HttpResponse:
    body = json.dumps({"message": status.phrase}).encode()
    return HttpResponse(status.value, [("content-type", "application/json")], body)


AccessLog = Callable[[str, str, int, float], None]


class QuietHTTPServer(ThreadingHTTPServer):
    """A client that hangs up before its answer is written (curl's Ctrl-C, a browser's cancelled tab) is no error:
    it gets no 25-line BrokenPipeError traceback. Every other error is still printed."""

    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError | TimeoutError):
            return
        super().handle_error(request, client_address)


class LocalHttpApi:
    """A threading HTTP server on 127.0.0.1 that invokes the route's function for each request."""

    def __init__(
        self,
        routes: list[Route],
        invoke: Callable[[str, dict[str, Any]], Any],
        port: int = 3000,
        host: str = "127.0.0.1",
        access_log: AccessLog | None = None,
    ) -> None:
        self.routes = routes
        self._invoke = invoke
        self._access_log = access_log
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                api._handle(self)

            do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = do_OPTIONS = do_HEAD = _handle

            def __getattr__(self, name: str) -> Any:
                # Other methods (TRACE, QUERY, ...) take no route: the gateway's 404, not http.server's 501.
                if name.startswith("do_"):
                    return self._handle
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = QuietHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread = threading.Thread(target=self._server.serve_forever, name="http-api", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(10)

    def _handle(self, request: BaseHTTPRequestHandler) -> None:
        started = time.monotonic()
        method = request.command.upper()
        raw_path, _, raw_query = request.path.partition("?")
        length = int(request.headers.get("content-length") or 0)
        if length > _MAX_BODY_BYTES:
            response = _error_response(HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
            request.close_connection = True
        else:
            body = request.rfile.read(length) if length else b""
            response = self._respond(request, method, raw_path, raw_query, body)
        request.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in ("content-length", "connection", "transfer-encoding"):
                request.send_header(name, value)
        request.send_header("content-length", str(len(response.body)))
        request.end_headers()
        if method != "HEAD":
            request.wfile.write(response.body)
        if self._access_log is not None:
            self._access_log(method, request.path, response.status, time.monotonic() - started)

    def _respond(
        self, request: BaseHTTPRequestHandler, method: str, raw_path: str, raw_query: str, body: bytes
    ) -> HttpResponse:
        selected = select_route(self.routes, method, raw_path)
        if selected is None:
            return _error_response(HTTPStatus.NOT_FOUND)
        route, parameters = selected
        host = request.headers.get("host") or "{}:{}".format(*self._server.server_address[:2])
        event = payload_v2_event(
            route,
            method,
            raw_path,
            raw_query,
            list(request.headers.items()),
            body,
            parameters,
            request.client_address[0],
            host,
        )
        try:
            result = self._invoke(route.function, event)
        except FunctionError as error:
            timed_out = error.payload.get("errorType") == "Sandbox.Timedout"
            return _error_response(HTTPStatus.SERVICE_UNAVAILABLE if timed_out else HTTPStatus.INTERNAL_SERVER_ERROR)
        return http_response(result)
