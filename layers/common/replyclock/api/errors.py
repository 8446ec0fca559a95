"""The one place where errors become HTTP answers: {"message": ..., "field": ...}.

400 for malformed parameters (and bodies that are not JSON, or JSON nested too deep or with
absurdly long numbers), 403 for a brand the caller may not read, 404 for an unknown brand,
conversation or route, 412 for a stale If-Match (a lost concurrent update included), 413 for an
oversized body, 415 for a body that is not JSON, 422 for a JSON body that fails validation, 428 for
a write that needs If-Match and has none, 503 when DynamoDB throttles. Anything else is our fault:
logged, and answered 500 without internals.
"""

from __future__ import annotations

import binascii
import json
from collections.abc import Callable, Sequence
from http import HTTPStatus
from typing import Any, ClassVar

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError, ServiceError
from aws_lambda_powertools.event_handler.middlewares.openapi_validation import OpenAPIRequestValidationMiddleware
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.event_handler.openapi.types import OpenAPIResponse
from aws_lambda_powertools.event_handler.types import EventHandlerInstance
from pydantic import ValidationError

from replyclock.dal.table import Throttled
from replyclock.logic.metrics import WindowError
from replyclock.models.api import ErrorBody
from replyclock.observability import logger

# API Gateway accepts up to 10 MB; nothing we take is anywhere near this.
MAX_BODY_BYTES = 64 * 1024
# Where a validation error was found, as Powertools names it; anything but the body is a parameter.
_LOCATIONS = {"query", "path", "header", "cookie", "body"}
_MAX_ERRORS_LISTED = 5
# No value we take needs more digits (Python refuses to parse more than 4,300 anyway), nor more
# nesting: the deepest body we document is a brand's calendar, 4 levels down.
MAX_NUMBER_DIGITS = 40
MAX_JSON_DEPTH = 32


class ApiError(Exception):
    status: ClassVar[HTTPStatus] = HTTPStatus.BAD_REQUEST

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class BadRequest(ApiError):
    status = HTTPStatus.BAD_REQUEST


class NotFound(ApiError):
    status = HTTPStatus.NOT_FOUND


class Forbidden(ApiError):
    status = HTTPStatus.FORBIDDEN


class PreconditionFailed(ApiError):
    status = HTTPStatus.PRECONDITION_FAILED


class PreconditionRequired(ApiError):
    status = HTTPStatus.PRECONDITION_REQUIRED


class PayloadTooLarge(ApiError):
    status = HTTPStatus.REQUEST_ENTITY_TOO_LARGE


class Unprocessable(ApiError):
    status = HTTPStatus.UNPROCESSABLE_ENTITY

    @classmethod
    def from_validation(cls, error: ValidationError) -> Unprocessable:
        errors = error.errors(include_url=False, include_input=False)
        return cls(_describe(errors), _field_of(errors[0]["loc"]) if errors else None)


def bounded_json_loads(text: str) -> Any:
    """The resolver's JSON body parser: refuses oversized bodies, deep nesting and huge numbers with a 4xx.

    json.loads alone raises RecursionError on deep nesting and ValueError past 4,300 digits: 500s.
    """
    if len(text.encode()) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request body exceeds {MAX_BODY_BYTES} bytes", "body")
    if text.count("[") + text.count("{") > MAX_JSON_DEPTH and _nesting_depth(text) > MAX_JSON_DEPTH:
        raise BadRequest(f"request body nests deeper than {MAX_JSON_DEPTH} levels", "body")
    return json.loads(text, parse_int=_bounded_int, parse_float=_bounded_float)


def _nesting_depth(text: str) -> int:
    """The deepest nesting of arrays and objects in JSON text (brackets inside strings do not count)."""
    depth = deepest = 0
    in_string = escaped = False
    for char in text:
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif char in "]}":
            depth -= 1
    return deepest


def _bounded_int(digits: str) -> int:
    if len(digits.lstrip("-")) > MAX_NUMBER_DIGITS:
        raise BadRequest(f"request body has a number longer than {MAX_NUMBER_DIGITS} digits", "body")
    return int(digits)


def _bounded_float(digits: str) -> float:
    if len(digits) > 2 * MAX_NUMBER_DIGITS:
        raise BadRequest(f"request body has a number longer than {MAX_NUMBER_DIGITS} digits", "body")
    return float(digits)


class JsonBodyValidation(OpenAPIRequestValidationMiddleware):
    """Powertools' request validation, for JSON bodies only.

    Powertools also parses form and multipart bodies, which no route documents, and a multipart one
    without a boundary fails with a bare ValueError (a 500). Anything but JSON is a 415 here, before parsing.
    Media types are case-insensitive (RFC 9110): APPLICATION/JSON is JSON, which Powertools' own check misses.
    """

    def _get_body(self, app: EventHandlerInstance) -> dict[str, Any]:
        content_type = app.current_event.headers.get("content-type", "")
        media_type = content_type.partition(";")[0].strip().lower()
        if media_type not in ("", content_types.APPLICATION_JSON):
            raise RequestUnsupportedContentType(
                "Unsupported content type",
                errors=[{"type": "unsupported_content_type", "loc": ("body",), "msg": content_type, "input": {}}],
            )
        return self._parse_json_data(app)


def accept_json_bodies_only(app: APIGatewayHttpResolver) -> None:
    """Replace the request validation; call before the first request (each route copies it on its first call)."""
    # Powertools' middleware __init__ carries no annotations.
    app._request_validation_middleware = JsonBodyValidation()  # type: ignore[no-untyped-call]


def error_response(status: HTTPStatus, message: str, field: str | None = None) -> Response[dict[str, Any]]:
    body = ErrorBody(message=message, field=field).model_dump()
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body)


def _api_error(error: ApiError) -> Response[dict[str, Any]]:
    return error_response(error.status, error.message, error.field)


def _window_error(error: WindowError) -> Response[dict[str, Any]]:
    return error_response(HTTPStatus.BAD_REQUEST, str(error), error.field)


def _validation_error(error: RequestValidationError) -> Response[dict[str, Any]]:
    errors = error.errors()
    if any(item.get("type") == "json_invalid" for item in errors):
        return error_response(HTTPStatus.BAD_REQUEST, "request body is not valid JSON", "body")
    in_body = bool(errors) and all(_location(item["loc"]) == "body" for item in errors)
    status = HTTPStatus.UNPROCESSABLE_ENTITY if in_body else HTTPStatus.BAD_REQUEST
    return error_response(status, _describe(errors), _field_of(errors[0]["loc"]) if errors else None)


def _unsupported_content(error: RequestUnsupportedContentType) -> Response[dict[str, Any]]:
    return error_response(HTTPStatus.UNSUPPORTED_MEDIA_TYPE, "request body must be application/json", "body")


def _undecodable_body(error: Exception) -> Response[dict[str, Any]]:
    return error_response(HTTPStatus.BAD_REQUEST, "request body is not UTF-8 text", "body")


def _service_error(error: ServiceError) -> Response[dict[str, Any]]:
    return error_response(HTTPStatus(error.status_code), str(error.msg))


def _throttled(error: Throttled) -> Response[dict[str, Any]]:
    logger.warning("throttled by DynamoDB", error=str(error))
    response = error_response(HTTPStatus.SERVICE_UNAVAILABLE, "the service is busy; retry shortly")
    response.headers["Retry-After"] = "1"
    return response


def _unexpected(error: Exception) -> Response[dict[str, Any]]:
    logger.exception("unhandled error", error_type=type(error).__name__)
    return error_response(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error")


def register_error_handlers(app: APIGatewayHttpResolver) -> None:
    def no_route(error: NotFoundError) -> Response[dict[str, Any]]:
        event = app.current_event
        return error_response(HTTPStatus.NOT_FOUND, f"no route {event.http_method} {event.path}")

    handlers: list[tuple[type[Exception] | list[type[Exception]], Callable[[Any], Response[dict[str, Any]]]]] = [
        (ApiError, _api_error),
        (WindowError, _window_error),
        (RequestValidationError, _validation_error),
        (RequestUnsupportedContentType, _unsupported_content),
        ([UnicodeDecodeError, binascii.Error], _undecodable_body),
        (NotFoundError, no_route),
        (ServiceError, _service_error),
        (Throttled, _throttled),
        # Handlers are looked up along the exception's MRO, so this one only sees what no other one handles.
        (Exception, _unexpected),
    ]
    for exceptions, handler in handlers:
        app.exception_handler(exceptions)(handler)


def route_responses(*statuses: int) -> dict[int, OpenAPIResponse]:
    """OpenAPI responses of a route: 200 (the return type's schema) and the error answers it can give.

    422 is always listed: Powertools documents one for every validated route, and this keeps its
    schema ours. 503 too: every route reads the table, which may throttle it.
    """
    descriptions = {
        400: "Malformed parameter (or a body that is not JSON).",
        403: "The caller may not read this brand (per-brand authorisation).",
        404: "Unknown brand, conversation, source or route.",
        412: "If-Match (or If-None-Match: *) does not match the resource: read it again.",
        428: "An update needs If-Match with the ETag last read.",
        413: f"Body larger than {MAX_BODY_BYTES} bytes.",
        415: "Body is not application/json.",
        422: "The JSON body fails validation (routes that take a body).",
        503: "DynamoDB throttled the request; retry after Retry-After seconds.",
    }
    responses: dict[int, OpenAPIResponse] = {200: {"description": "Success"}}
    for status in sorted({*statuses, 403, 422, 503}):
        responses[status] = {
            "description": descriptions[status],
            "content": {content_types.APPLICATION_JSON: {"model": ErrorBody}},
        }
    responses[503]["headers"] = {"Retry-After": {"description": "Seconds to wait.", "schema": {"type": "integer"}}}
    return responses


def _location(loc: Sequence[Any]) -> str | None:
    return str(loc[0]) if loc and str(loc[0]) in _LOCATIONS else None


def _field_of(loc: Sequence[Any]) -> str | None:
    parts = [str(part) for part in (loc[1:] if _location(loc) else loc)]
    return ".".join(parts) or (str(loc[0]) if loc else None)


def _describe(errors: Sequence[Any]) -> str:
    described = []
    for item in errors[:_MAX_ERRORS_LISTED]:
        field = _field_of(item.get("loc", ()))
        message = str(item.get("msg") or item.get("type") or "invalid")
        described.append(f"{field}: {message}" if field else message)
    if len(errors) > _MAX_ERRORS_LISTED:
        described.append(f"and {len(errors) - _MAX_ERRORS_LISTED} more")
    return "; ".join(described) or "invalid request"
