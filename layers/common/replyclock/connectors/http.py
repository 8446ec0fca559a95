"""A small HTTP client for the connectors, on urllib: deadlines, retries, rate limits.

- Every request fits in the poll's time budget: its timeout is capped by what remains,
  and a retry that would not fit is not attempted (DeadlineExceeded).
- Network errors and 5xx are retried with exponential backoff and jitter.
- 429 raises Throttled at once (with Retry-After or the reset time); a response that
  says no requests remain makes the *next* request raise Throttled before it is sent.
  Either way the poll stops and keeps its cursor.
- Redirects are not followed (they would carry the Authorization header to another
  host), and error messages never carry credentials (see replyclock.redaction).
"""

from __future__ import annotations

import http.client
import json
import random
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Literal

from replyclock.observability import logger
from replyclock.redaction import redact

DEFAULT_TIMEOUT_SECONDS = 10.0
# A request with less time than this left in the budget is not worth starting.
MIN_REQUEST_SECONDS = 1.0
MAX_BODY_BYTES = 20 * 1024 * 1024
_RETRYABLE_STATUSES = frozenset({500, 502, 503, 504})

Params = Mapping[str, str | int | Sequence[str]] | None


class ConnectorError(Exception):
    """A source could not be read; the poll stops and keeps its cursor."""


class HttpError(ConnectorError):
    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(redact(message))
        self.status = status


class MalformedResponse(ConnectorError):
    """The response as a whole is not what the platform documents (one bad item is rejected, not this)."""


class DeadlineExceeded(ConnectorError):
    """Not enough of the poll's time budget remains for another request."""


class Throttled(ConnectorError):
    """The platform asked us to slow down; retry_after is in seconds when it said how long."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class Deadline:
    """The time a poll may still spend: the Lambda's remaining time minus a safety margin."""

    def __init__(self, remaining_ms: Callable[[], int], margin_ms: int = 0) -> None:
        self._remaining_ms = remaining_ms
        self._margin_ms = margin_ms

    def remaining_seconds(self) -> float:
        return max(0.0, (self._remaining_ms() - self._margin_ms) / 1000)

    @property
    def expired(self) -> bool:
        return self.remaining_seconds() <= 0

    @classmethod
    def unlimited(cls) -> Deadline:
        return cls(lambda: 10**9)


@dataclass(frozen=True)
class RateLimitHeaders:
    """A platform's rate-limit response headers and how it writes the reset moment."""

    remaining: str
    reset: str
    # epoch: unix seconds (X, Bluesky); seconds: seconds from now (Reddit); iso: a timestamp (Mastodon).
    reset_format: Literal["epoch", "seconds", "iso"]


@dataclass(frozen=True)
class Response:
    status: int
    url: str
    headers: Mapping[str, str]
    body: bytes

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except (ValueError, RecursionError):
            # Besides bad JSON and bad UTF-8 (ValueErrors both): integers past Python's digit limit, deep nesting.
            raise MalformedResponse(f"{_path(self.url)} did not answer JSON") from None


class _KeepErrorResponses(urllib.request.HTTPErrorProcessor):
    """Hand 4xx/5xx responses back as responses (we decide what they mean), not as exceptions."""

    def http_response(self, request: urllib.request.Request, response: Any) -> Any:
        return response

    https_response = http_response


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def build_opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_KeepErrorResponses(), _NoRedirects())


@dataclass
class HttpClient:
    deadline: Deadline
    user_agent: str = "replyclock/0.1"
    rate_limit: RateLimitHeaders | None = None
    timeout_seconds: float = DEFAULT_TIMEOUT_SECONDS
    max_attempts: int = 4
    backoff_seconds: float = 0.5
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.time
    opener: urllib.request.OpenerDirector = field(default_factory=build_opener)
    # Unix time before which the platform said no request may be made.
    blocked_until: float | None = None

    def get(self, url: str, *, params: Params = None, headers: Mapping[str, str] | None = None) -> Response:
        return self.request("GET", url, params=params, headers=headers)

    def post_json(self, url: str, body: Any, *, headers: Mapping[str, str] | None = None) -> Response:
        data = json.dumps(body).encode()
        return self.request("POST", url, data=data, headers={"Content-Type": "application/json", **(headers or {})})

    def post_form(self, url: str, form: Mapping[str, str], *, headers: Mapping[str, str] | None = None) -> Response:
        data = urllib.parse.urlencode(form).encode()
        content_type = {"Content-Type": "application/x-www-form-urlencoded"}
        return self.request("POST", url, data=data, headers={**content_type, **(headers or {})})

    def request(
        self,
        method: str,
        url: str,
        *,
        params: Params = None,
        headers: Mapping[str, str] | None = None,
        data: bytes | None = None,
    ) -> Response:
        if self.blocked_until is not None and self.clock() < self.blocked_until:
            raise Throttled(f"rate limit exhausted until {_iso(self.blocked_until)}", self.blocked_until - self.clock())
        full_url = with_params(url, params)
        request_headers = {"User-Agent": self.user_agent, "Accept": "application/json", **(headers or {})}
        for attempt in range(1, self.max_attempts + 1):
            remaining = self.deadline.remaining_seconds()
            if remaining < MIN_REQUEST_SECONDS:
                raise DeadlineExceeded(f"no time left for {method} {_path(full_url)}")
            request = urllib.request.Request(full_url, data=data, headers=request_headers, method=method)
            try:
                response = self._send(request, timeout=min(self.timeout_seconds, remaining))
            except (OSError, http.client.HTTPException) as error:
                failure = f"{type(error).__name__}: {error}"
            else:
                self._note_rate_limit(response)
                if response.status == 429:
                    retry_after = self._retry_after(response)
                    raise Throttled(f"{method} {_path(full_url)} answered 429", retry_after)
                if response.status < 300:
                    return response
                if response.status not in _RETRYABLE_STATUSES:
                    raise HttpError(
                        f"{method} {_path(full_url)} answered {response.status}: {_snippet(response.body)}",
                        response.status,
                    )
                failure = f"HTTP {response.status}"
            if attempt == self.max_attempts:
                raise HttpError(f"{method} {_path(full_url)} failed {attempt} times, last: {failure}")
            delay = self.backoff_seconds * 2 ** (attempt - 1) * random.uniform(0.5, 1.0)
            if delay + MIN_REQUEST_SECONDS > self.deadline.remaining_seconds():
                raise DeadlineExceeded(f"no time left to retry {method} {_path(full_url)} after {failure}")
            logger.warning("retrying request", path=_path(full_url), attempt=attempt, reason=redact(failure))
            self.sleep(delay)
        raise AssertionError("unreachable")

    def _send(self, request: urllib.request.Request, timeout: float) -> Response:
        with self.opener.open(request, timeout=timeout) as raw:
            body = raw.read(MAX_BODY_BYTES + 1)
            if len(body) > MAX_BODY_BYTES:
                raise MalformedResponse(f"{_path(request.full_url)} answered more than {MAX_BODY_BYTES} bytes")
            headers = {name.lower(): value for name, value in raw.headers.items()}
            return Response(status=raw.status, url=request.full_url, headers=headers, body=body)

    def _note_rate_limit(self, response: Response) -> None:
        if self.rate_limit is None:
            return
        remaining = _number(response.header(self.rate_limit.remaining))
        if remaining is not None and remaining <= 0:
            self.blocked_until = self._reset_at(response) or self.clock() + 60

    def _reset_at(self, response: Response) -> float | None:
        if self.rate_limit is None:
            return None
        value = response.header(self.rate_limit.reset)
        if value is None:
            return None
        if self.rate_limit.reset_format == "iso":
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                return None
        number = _number(value)
        if number is None:
            return None
        return number if self.rate_limit.reset_format == "epoch" else self.clock() + number

    def _retry_after(self, response: Response) -> float | None:
        value = response.header("retry-after")
        if value is not None:
            seconds = _number(value)
            if seconds is None:
                try:
                    seconds = parsedate_to_datetime(value).timestamp() - self.clock()
                except (TypeError, ValueError):
                    seconds = None
            if seconds is not None:
                self.blocked_until = self.clock() + max(0.0, seconds)
                return max(0.0, seconds)
        reset = self._reset_at(response)
        if reset is not None:
            self.blocked_until = reset
            return max(0.0, reset - self.clock())
        return None


def with_params(url: str, params: Params) -> str:
    if not params:
        return url
    pairs: list[tuple[str, str]] = []
    for name, value in params.items():
        if isinstance(value, str | int):
            pairs.append((name, str(value)))
        else:
            pairs.extend((name, item) for item in value)
    separator = "&" if urllib.parse.urlsplit(url).query else "?"
    return f"{url}{separator}{urllib.parse.urlencode(pairs)}"


def link_targets(link_header: str | None) -> dict[str, str]:
    """rel -> URL from an RFC 8288 Link header: `<https://a/b?max_id=1>; rel="next", <...>; rel="prev"`."""
    targets: dict[str, str] = {}
    for part in (link_header or "").split(","):
        url, _, attributes = part.partition(";")
        url = url.strip()
        if not (url.startswith("<") and url.endswith(">")):
            continue
        for attribute in attributes.split(";"):
            name, _, value = attribute.strip().partition("=")
            if name.strip().lower() == "rel":
                for rel in value.strip().strip('"').split():
                    targets[rel.lower()] = url[1:-1]
    return targets


def query_value(url: str, name: str) -> str | None:
    values = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get(name)
    return values[0] if values else None


def _number(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        return float(value.strip())
    except ValueError:
        return None


def _path(url: str) -> str:
    """The URL without its query: queries may carry tokens of some APIs, and are noise in logs."""
    parts = urllib.parse.urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


# How much of an error body is read for its snippet: enough to find a credential echoed just past the cut.
_SNIPPET_SCAN_BYTES = 65_536


def _snippet(body: bytes, limit: int = 300) -> str:
    """The start of an error body for messages: masked whole before it is cut, so a cut never splits a secret out."""
    text = redact(body[:_SNIPPET_SCAN_BYTES].decode("utf-8", errors="replace"))
    # Masking can only shorten the text; what the cut leaves of a secret is a prefix, which redact masks too.
    return redact(text[:limit])


def _iso(moment: float) -> str:
    return datetime.fromtimestamp(moment, tz=UTC).isoformat()
