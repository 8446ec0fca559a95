"""A fast path for moto's JSON responses of DynamoDB and DynamoDB Streams (moto 5.2).

moto serializes every response by walking the botocore output shape with a generic
attribute picker that tries half a dozen key aliases per member. For DynamoDB, whose
results are already plain dicts in wire format, that walk is most of the server's time:
profiling a replay of 5,000 real posts, serializing Query and GetRecords results took
57% of the whole run (a 1,000-record GetRecords page: about 2 s). This walks the same
shapes with plain dict lookups and produces the same JSON. Anything it does not expect
(an error, a result that is not a dict, an unknown shape type) goes to moto's own path.

Like devtools.moto_speedups, it changes speed only, and must be installed in the process
that runs the moto server. tests/localstack checks it against moto's serializer.
"""

from __future__ import annotations

import base64
import json
from enum import Enum
from typing import Any

from botocore import xform_name
from botocore.model import ListShape, MapShape, Shape, StructureShape
from moto.core.responses import ActionResult, BaseResponse
from moto.core.serialize import TimestampSerializer
from moto.core.utils import get_service_model

SERVICES = frozenset({"dynamodb", "dynamodbstreams"})
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
    if service in SERVICES and type(action_result).__name__ in ("ActionResult", "DynamoResult"):
        body = fast_body(service, self._get_action(), action_result.result)
        if body is not None:
            # moto's own answer for an empty result gives the status and headers; the body is ours.
            status, headers, _ = original_serialized(self, ActionResult({}))
            return status, headers, body
    return original_serialized(self, action_result)


def install() -> None:
    BaseResponse.serialized = _serialized  # type: ignore[method-assign]


def uninstall() -> None:
    BaseResponse.serialized = original_serialized  # type: ignore[method-assign]
