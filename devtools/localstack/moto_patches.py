"""The three patches of moto's internals (moto 5.2) that the tests and the local stack run on.

Installed once per process, for the whole run, by `install()`: tests/conftest.py calls it before
any test, the local stack's emulator before it starts moto's server (a no-op when the tests did).
Nothing uninstalls them, so every test runs on the same moto. Why each one is still needed, now
that the local stack's table runs on AWS's DynamoDB Local by default (docs/local-stack.md): most
tests, and the local stack where Java is missing, keep the table on moto.

1. Expression limits (a behaviour, not a speedup). moto accepts an expression of any length, so
   code that builds expressions from data (a bucket's guards, its histogram bins) would pass every
   moto test and fail on DynamoDB the first time a busy bucket grows. moto refuses, as DynamoDB
   does, an expression over 4 KB or a condition, filter or key condition with more than 300
   operators (comparators, AND/OR/NOT, BETWEEN/IN and function calls, as DynamoDB counts them).
2. Partition-sized Query (speed only). moto answers every Query by sorting *all* of the table's
   items, so a conversation lookup on a table of 5,000 posts takes ~80 ms and a replay of a real
   export grows quadratically. Query on the base table is handed only the partition it asks for;
   the items returned and their order are the same.
3. Fast JSON for DynamoDB and DynamoDB Streams responses (speed only). moto serializes every
   response by walking the botocore output shape with a generic attribute picker; for DynamoDB,
   whose results are already wire-format dicts, that was 57% of a replay of 5,000 real posts (a
   1,000-record GetRecords page: about 2 s). `fast_body` walks the same shapes with plain dict
   lookups and gives the same JSON (tests/localstack/test_moto_patches.py compares it with moto's
   own serializer, `original_serialized`); anything it does not expect goes to moto's own path.
"""

from __future__ import annotations

import base64
import json
import re
import sys
import threading
from collections.abc import Callable
from enum import Enum
from typing import Any

from botocore import xform_name
from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.core.responses import ActionResult, BaseResponse
from moto.core.serialize import TimestampSerializer
from moto.core.utils import get_service_model
from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.models.table import Table
from moto.dynamodb.responses import DynamoHandler

# --- 1. expression limits -------------------------------------------------------------------------

MAX_EXPRESSION_BYTES = 4096
MAX_EXPRESSION_OPERATORS = 300
_EXPRESSIONS = (
    "UpdateExpression",
    "ConditionExpression",
    "KeyConditionExpression",
    "FilterExpression",
    "ProjectionExpression",
)
_COUNTED_EXPRESSIONS = ("ConditionExpression", "FilterExpression", "KeyConditionExpression")
_OPERATOR = re.compile(r"<>|<=|>=|=|<|>|\b(?:AND|OR|NOT|BETWEEN|IN)\b|\b[a-z_]+\(", re.IGNORECASE)
_CHECKED_ACTIONS = ("put_item", "update_item", "delete_item", "query", "scan", "get_item")


def check_expressions(request: dict[str, Any]) -> None:
    """Raise DynamoDB's ValidationException for an expression DynamoDB would not take."""
    for name in _EXPRESSIONS:
        expression = request.get(name)
        if not isinstance(expression, str):
            continue
        size = len(expression.encode())
        if size > MAX_EXPRESSION_BYTES:
            raise MockValidationException(
                f"Invalid {name}: Expression size has exceeded the maximum allowed size; expression size: {size}"
            )
        if name in _COUNTED_EXPRESSIONS:
            operators = len(_OPERATOR.findall(expression))
            if operators > MAX_EXPRESSION_OPERATORS:
                raise MockValidationException(
                    f"Invalid {name}: The expression contains too many operators; operator count: {operators}"
                )


def _checked(action: str) -> Callable[..., Any]:
    original = getattr(DynamoHandler, action)

    def checked(self: DynamoHandler) -> Any:
        check_expressions(self.body)
        return original(self)

    checked.__name__ = action
    return checked


# --- 2. partition-sized Query ---------------------------------------------------------------------

_original_query = Table.query
_original_all_items = Table.all_items
_partition = threading.local()


def _all_items(self: Table) -> Any:
    hint = getattr(_partition, "hint", None)
    if hint is not None and hint[0] is self:
        return list(hint[1].values())
    return _original_all_items(self)


def _query(self: Table, hash_key: Any, *args: Any, **kwargs: Any) -> Any:
    index_name = kwargs.get("index_name", args[6] if len(args) > 6 else None)
    if index_name is not None or not self.range_key_attr or hash_key is None:
        return _original_query(self, hash_key, *args, **kwargs)
    _partition.hint = (self, self.items.get(hash_key, {}))
    try:
        return _original_query(self, hash_key, *args, **kwargs)
    finally:
        _partition.hint = None


# --- 3. fast JSON ---------------------------------------------------------------------------------

JSON_SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
original_serialized = BaseResponse.serialized
_timestamps = TimestampSerializer(TimestampSerializer.TIMESTAMP_FORMAT_UNIX)


class _Unexpected(Exception):
    """The fast path does not know this value: moto's serializer takes the whole response."""


def _value(value: Any, shape: Shape) -> Any:
    kind = shape.type_name
    if kind == "structure":
        assert isinstance(shape, StructureShape)
        if shape.is_document_type:
            return value
        if not isinstance(value, dict):
            raise _Unexpected(type(value).__name__)
        return _structure(value, shape)
    if kind == "list":
        assert isinstance(shape, ListShape)
        return [_value(item, shape.member) for item in value]
    if kind == "map":
        assert isinstance(shape, MapShape)
        return {key: _value(item, shape.value) for key, item in value.items()}
    if kind == "string":
        if isinstance(value, Enum):
            value = value.value
        return str(value) if value not in (None, {}, []) else value
    if kind in ("integer", "long"):
        return int(value)
    if kind in ("float", "double"):
        return float(value)
    if kind == "boolean":
        return value
    if kind == "blob":
        data = value.encode("utf-8") if isinstance(value, str) else value
        return base64.b64encode(data).strip().decode("utf-8")
    if kind == "timestamp":
        timestamp_format = shape.serialization.get("timestampFormat", TimestampSerializer.TIMESTAMP_FORMAT_UNIX)
        return _timestamps._convert_timestamp_to_str(value, timestamp_format)
    raise _Unexpected(kind)


def _structure(value: dict[str, Any], shape: StructureShape) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, member in shape.members.items():
        item = value.get(key)
        if item is None:
            item = value.get(xform_name(key))
        if item is not None:
            result[member.serialization.get("name", key)] = _value(item, member)
    return result


def fast_body(service: str, action: str, result: Any) -> str | None:
    """The response body, or None when moto's own serializer must answer."""
    if not isinstance(result, dict):
        return None
    output = get_service_model(service).operation_model(action).output_shape
    if output is None:
        return None
    assert isinstance(output, StructureShape)
    try:
        return json.dumps(_structure(result, output))
    except _Unexpected:
        return None


def _serialized(self: BaseResponse, action_result: ActionResult) -> Any:
    service = self.boto3_service_name
    if service in JSON_SERVICES and type(action_result).__name__ in ("ActionResult", "DynamoResult"):
        body = fast_body(service, self._get_action(), action_result.result)
        if body is not None:
            # moto's own answer for an empty result gives the status and headers; the body is ours.
            status, headers, _ = original_serialized(self, ActionResult({}))
            return status, headers, body
    return original_serialized(self, action_result)


_installed = False


def install() -> None:
    """Install the three patches in this process; the second and later calls change nothing."""
    global _installed
    if _installed:
        return
    _installed = True
    # moto parses an UpdateExpression recursively, several frames per term, so ~150 ADD terms (well
    # within DynamoDB's 4 KB) overflow Python's default stack; let it take what DynamoDB takes.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    for action in _CHECKED_ACTIONS:
        setattr(DynamoHandler, action, _checked(action))
    Table.query = _query  # type: ignore[method-assign]
    Table.all_items = _all_items  # type: ignore[method-assign]
    BaseResponse.serialized = _serialized  # type: ignore[method-assign]
