"""Keep credential values out of logs and error messages.

Every secret value the process loads is registered here; `redact` masks them in any
text, and `RedactingFilter` does the same to every log record (message, extra fields
and the formatted exception) before Powertools formats it.

A platform that echoes a credential back does not always echo it verbatim: an error body
may carry it URL-encoded (%XX, + for a space), JSON-escaped (\\uXXXX, \\/), in any mix of
those per character, or cut short (our own error snippets stop at 300 bytes). `redact`
masks each of those: a secret is found character by character, each character in any of
its encodings, and a run of at least MIN_SECRET_LENGTH leading characters of a secret
(a cut-short secret) is masked like the whole one.
"""

from __future__ import annotations

import logging
import re
import threading
import traceback
from collections.abc import Iterable
from typing import Any

MASK = "***"
# Shorter values (a "1", a "true") would mask innocent text and are no secret anyway.
MIN_SECRET_LENGTH = 6

_lock = threading.Lock()
_secrets: frozenset[str] = frozenset()
_matchers: tuple[_SecretMatcher, ...] = ()
_JSON_SHORT_ESCAPES = {
    '"': '\\"',
    "\\": "\\\\",
    "/": "\\/",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
}
# Attributes every LogRecord has; anything else on a record came from `extra`.
_STANDARD_ATTRIBUTES = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def _hex(text: str) -> str:
    """A regex matching hex digits in either case."""
    return "".join(f"[{c.lower()}{c.upper()}]" if c.isalpha() else c for c in text)


def _encodings(char: str) -> list[str]:
    """Regexes matching one character of a secret as itself, URL-encoded or JSON-escaped."""
    code = ord(char)
    if code > 0xFFFF:
        units = [0xD800 + ((code - 0x10000) >> 10), 0xDC00 + ((code - 0x10000) & 0x3FF)]
    else:
        units = [code]
    json_escape = "".join(r"\\u" + _hex(f"{unit:04x}") for unit in units)
    alternatives = [
        json_escape,
        "".join(f"%{_hex(f'{byte:02x}')}" for byte in char.encode("utf-8")),
    ]
    if char in _JSON_SHORT_ESCAPES:
        alternatives.append(re.escape(_JSON_SHORT_ESCAPES[char]))
    alternatives.append(re.escape(char))
    if char == " ":
        alternatives.append(r"\+")
    return alternatives


class _SecretMatcher:
    """Finds a secret, or at least MIN_SECRET_LENGTH of its leading characters, in any mix of encodings."""

    def __init__(self, secret: str) -> None:
        self.secret = secret
        # Per character, each of its encodings; an echo can be read more than one way (a "\\\\" is one escaped
        # backslash or two raw ones), so every reading is followed, breadth first.
        self.characters = [[re.compile(alternative) for alternative in _encodings(char)] for char in secret]
        self.first = re.compile("|".join(_encodings(secret[0])))
        self.needed = min(len(secret), MIN_SECRET_LENGTH)

    def _longest(self, text: str, start: int) -> tuple[int, int]:
        """How many leading characters of the secret the text spells from start, and where that spelling ends."""
        frontier, matched = {start}, 0
        for alternatives in self.characters:
            reached = {
                found.end()
                for position in frontier
                for alternative in alternatives
                if (found := alternative.match(text, position)) is not None
            }
            if not reached:
                break
            frontier, matched = reached, matched + 1
        return matched, max(frontier)

    def spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        position = 0
        while (start := self.first.search(text, position)) is not None:
            matched, end = self._longest(text, start.start())
            if matched >= self.needed:
                found.append((start.start(), end))
                position = end
            else:
                position = start.start() + 1
        return found


def register_secrets(values: Iterable[str]) -> None:
    global _secrets, _matchers
    fresh = {value for value in values if len(value) >= MIN_SECRET_LENGTH}
    if fresh - _secrets:
        with _lock:
            _secrets = _secrets | fresh
            # Longest first, so a secret that contains another is masked whole.
            _matchers = tuple(_SecretMatcher(secret) for secret in sorted(_secrets, key=len, reverse=True))


def redact(text: str) -> str:
    """The text with every registered secret masked, whole or cut short, plain or encoded."""
    for matcher in _matchers:
        spans = matcher.spans(text)
        if spans:
            pieces, last = [], 0
            for start, end in spans:
                pieces += [text[last:start], MASK]
                last = end
            text = "".join([*pieces, text[last:]])
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
