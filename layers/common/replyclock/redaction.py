"""Keep credential values out of logs and error messages.

Every secret value the process loads is registered here; `redact` masks them in any
text, and `RedactingFilter` does the same to every log record (message, extra fields
and the formatted exception) before Powertools formats it.
"""

from __future__ import annotations

import logging
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Shorter values (a "1", a "true") would mask innocent text and are no secret anyway.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def register_secrets(values: Iterable[str]) -> None:
    global _secrets
    fresh = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    if fresh - _secrets:
        with _lock:
            _secrets = _secrets | fresh


def redact(text: str) -> str:
    # Longest first, so a secret that contains another is masked whole.
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, MASK)
    return text


def redact_value(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {key: redact_value(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_value(item) for item in value)
    if value is None or isinstance(value, bool | int | float):
        return value
    text = str(value)
    masked = redact(text)
    return masked if masked != text else value


class RedactingFilter(logging.Filter):
    """Masks registered secrets in a record; the formatted exception replaces exc_info."""

    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        record.msg = redact_value(record.msg)
        for name, value in list(vars(record).items()):
            if name not in _STANDARD_ATTRIBUTES:
                setattr(record, name, redact_value(value))
        if record.exc_info and record.exc_info[1] is not None:
            error_type, error, trace = record.exc_info
            # Powertools prefers an `exception` extra over formatting exc_info itself (which would print str(error)).
            record.exception = redact("".join(traceback.format_exception(error_type, error, trace)).rstrip())
            record.exception_name = error.__class__.__name__
            record.exc_info = None
            record.exc_text = None
        return True


def install_redaction(logger: Any) -> None:
    """Add the filter once to a stdlib logger or a Powertools Logger (which forwards addFilter)."""
    if not any(isinstance(existing, RedactingFilter) for existing in logger.filters):
        logger.addFilter(RedactingFilter())
