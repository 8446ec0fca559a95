"""Make moto refuse expressions that DynamoDB refuses: over 4 KB, or with more than 300 operators.

moto 5.2 accepts an UpdateExpression of any length, so code that builds expressions from
data (a bucket's guards, its histogram bins) would pass every test and fail on DynamoDB
the first time a busy bucket grows. Installed by tests/conftest.py and the local stack.
The operator count here is the number of comparators, AND/OR/NOT, BETWEEN/IN and
function calls in a condition or filter, which is how DynamoDB counts them.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from moto.dynamodb.exceptions import MockValidationException
from moto.dynamodb.responses import DynamoHandler

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
_ACTIONS = ("put_item", "update_item", "delete_item", "query", "scan", "get_item")
_originals: dict[str, Callable[..., Any]] = {}


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
    original = _originals[action]

    def checked(self: DynamoHandler) -> Any:
        check_expressions(self.body)
        return original(self)

    checked.__name__ = action
    return checked


def install() -> None:
    # moto parses an UpdateExpression recursively, several frames per term, so ~150 ADD terms (well
    # within DynamoDB's 4 KB) overflow Python's default stack; let it take what DynamoDB takes.
    sys.setrecursionlimit(max(sys.getrecursionlimit(), 20_000))
    for action in _ACTIONS:
        if action not in _originals:
            _originals[action] = getattr(DynamoHandler, action)
            setattr(DynamoHandler, action, _checked(action))
