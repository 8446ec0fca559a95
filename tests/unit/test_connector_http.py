"""The connectors' HTTP client: retries, deadlines, rate limits, redirects and error hygiene (127.0.0.1 only)."""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors.http import (
    Deadline,
    DeadlineExceeded,
    HttpClient,
    HttpError,
    RateLimitHeaders,
    Throttled,
    link_targets,
    with_params,
)
from replyclock.redaction import register_secrets
from tests.support.ingesting import FakeApi, json_response

X_LIMITS = RateLimitHeaders(remaining="x-rate-limit-remaining", reset="x-rate-limit-reset", reset_format="epoch")


def client(deadline: Deadline | None = None, **options: object) -> HttpClient:
    settings: dict[str, object] = {"backoff_seconds": 0.001, "sleep": lambda seconds: None, "timeout_seconds": 2.0}
    settings.update(options)
    return HttpClient(deadline=deadline or Deadline.unlimited(), **settings)  # type: ignore[arg-type]


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    yield listener.getsockname()[1]
    listener.close()


@pytest.fixture
def closed_port() -> int:
    probe = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    probe.bind(("127.0.0.1", 0))
    port: int = probe.getsockname()[1]
    probe.close()
    return port


def test_a_5xx_is_retried_until_the_server_answers(api: FakeApi) -> None:
    # Given a server failing twice with 503, then answering
    api.route("^/things$", lambda request: json_response({"ok": True}))
    api.faults.update({1: json_response({}, status=503), 2: json_response({}, status=502)})

    # When the client asks once
    response = client().get(f"{api.url}/things")

    # Then it retried and got the answer
    assert response.json() == {"ok": True}
    assert len(api.requests) == 3


def test_a_persistent_5xx_gives_up_after_the_last_attempt(api: FakeApi) -> None:
    # Given a server that always fails
    api.route("^/things$", lambda request: json_response({}, status=500))

    # When the client asks
    with pytest.raises(HttpError, match="failed 3 times, last: HTTP 500"):
        client(max_attempts=3).get(f"{api.url}/things")

    # Then it tried exactly max_attempts times
    assert len(api.requests) == 3


def test_a_refused_connection_is_retried_then_reported(closed_port: int) -> None:
    # Given nothing listening on the port
    # When the client asks
    # Then it retries and reports the network error
    with pytest.raises(HttpError, match="failed 2 times"):
        client(max_attempts=2).get(f"http://127.0.0.1:{closed_port}/things")


def test_a_request_times_out_within_its_timeout(silent_port: int) -> None:
    # Given a server that never answers
    started = time.monotonic()

    # When the client asks with a short timeout and no retry
    with pytest.raises(HttpError, match="TimeoutError|timed out"):
        client(max_attempts=1, timeout_seconds=0.2).get(f"http://127.0.0.1:{silent_port}/slow")

    # Then it gave up after about the timeout
    assert time.monotonic() - started < 2


def test_a_request_timeout_is_capped_by_the_remaining_budget(silent_port: int) -> None:
    # Given a budget of 1.5 seconds and a 30 second timeout
    ends = time.monotonic() + 1.5
    deadline = Deadline(lambda: int((ends - time.monotonic()) * 1000))
    started = time.monotonic()

    # When the server never answers
    with pytest.raises((HttpError, DeadlineExceeded)):
        client(deadline, timeout_seconds=30.0).get(f"http://127.0.0.1:{silent_port}/slow")

    # Then the client stopped within the budget
    assert time.monotonic() - started < 3


def test_no_request_starts_when_the_budget_is_spent(api: FakeApi) -> None:
    # Given a budget with less than a second left
    api.route("^/things$", lambda request: json_response({}))

    # When the client is asked for a request
    with pytest.raises(DeadlineExceeded):
        client(Deadline(lambda: 500)).get(f"{api.url}/things")

    # Then nothing was sent
    assert api.requests == []


def test_a_retry_that_does_not_fit_the_budget_is_not_made(api: FakeApi) -> None:
    # Given a failing server and a backoff longer than the budget left
    api.route("^/things$", lambda request: json_response({}, status=503))

    # When the client asks
    with pytest.raises(DeadlineExceeded, match="no time left to retry"):
        client(Deadline(lambda: 5_000), backoff_seconds=30.0).get(f"{api.url}/things")

    # Then it made one attempt only
    assert len(api.requests) == 1


def test_429_raises_throttled_with_retry_after_seconds(api: FakeApi) -> None:
    # Given a server answering 429 with Retry-After in seconds
    api.route("^/things$", lambda request: json_response({}, status=429, headers={"Retry-After": "30"}))

    # When the client asks
    with pytest.raises(Throttled) as raised:
        client().get(f"{api.url}/things")

    # Then it did not retry, and says how long to wait
    assert raised.value.retry_after == 30
    assert len(api.requests) == 1


def test_429_retry_after_may_be_an_http_date(api: FakeApi) -> None:
    # Given Retry-After as an HTTP date two minutes ahead
    when = format_datetime(datetime.now(UTC) + timedelta(minutes=2), usegmt=True)
    api.route("^/things$", lambda request: json_response({}, status=429, headers={"Retry-After": when}))

    # When the client asks
    with pytest.raises(Throttled) as raised:
        client().get(f"{api.url}/things")

    # Then the wait is about two minutes
    assert raised.value.retry_after == pytest.approx(120, abs=3)


def test_an_exhausted_rate_limit_stops_the_next_request_before_it_is_sent(api: FakeApi) -> None:
    # Given a successful answer saying no requests remain until the reset
    reset = int(time.time()) + 600
    headers = {"x-rate-limit-remaining": "0", "x-rate-limit-reset": str(reset)}
    api.route("^/things$", lambda request: json_response({"n": 1}, headers=headers))
    http = client(rate_limit=X_LIMITS)

    # When the client asks twice
    first = http.get(f"{api.url}/things")
    with pytest.raises(Throttled) as raised:
        http.get(f"{api.url}/things")

    # Then the first answer is used, and the second request is never sent
    assert first.json() == {"n": 1}
    assert len(api.requests) == 1
    assert raised.value.retry_after == pytest.approx(600, abs=3)


def test_redirects_are_not_followed(api: FakeApi) -> None:
    # Given a server redirecting to another path
    api.route("^/moved$", lambda request: Response("", status=302, headers={"Location": f"{api.url}/elsewhere"}))
    api.route("^/elsewhere$", lambda request: json_response({}))

    # When the client asks, with an Authorization header
    with pytest.raises(HttpError) as raised:
        client().get(f"{api.url}/moved", headers={"Authorization": "Bearer abc"})

    # Then the redirect is an error and its target is never asked
    assert raised.value.status == 302
    assert api.paths() == ["/moved"]


def test_an_error_message_never_carries_a_registered_secret(api: FakeApi) -> None:
    # Given a server that echoes the caller's token in its error body
    secret = "tok-3c1f0d-never-in-errors"
    register_secrets([secret])

    def echo(request: Request) -> Response:
        return json_response({"error": f"bad token {request.headers['Authorization']}"}, status=403)

    api.route("^/things$", echo)

    # When the request fails
    with pytest.raises(HttpError) as raised:
        client().get(f"{api.url}/things?q=1", headers={"Authorization": f"Bearer {secret}"})

    # Then the error keeps the status and the body, without the secret or the query
    assert raised.value.status == 403
    assert secret not in str(raised.value)
    assert "bad token Bearer ***" in str(raised.value)
    assert "q=1" not in str(raised.value)


def test_a_link_header_gives_its_targets_by_rel() -> None:
    # Given Mastodon's Link header
    header = (
        '<https://social.example/api/v1/notifications?max_id=34975535>; rel="next", '
        '<https://social.example/api/v1/notifications?min_id=34975861>; rel="prev"'
    )

    # When it is read
    targets = link_targets(header)

    # Then both targets are there
    assert targets == {
        "next": "https://social.example/api/v1/notifications?max_id=34975535",
        "prev": "https://social.example/api/v1/notifications?min_id=34975861",
    }


def test_list_parameters_repeat_their_name() -> None:
    # Given array parameters in the Mastodon/XRPC style
    # When they are added to a URL
    url = with_params("https://a.example/x", {"types[]": ["mention"], "reasons": ["mention", "reply"], "limit": 40})

    # Then each value gets its own name=value pair
    assert url == "https://a.example/x?types%5B%5D=mention&reasons=mention&reasons=reply&limit=40"
