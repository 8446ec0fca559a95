"""A registered secret never survives redaction, whatever the encoding a platform echoes it in, or where it is cut."""

from __future__ import annotations

import json
import logging
import urllib.parse

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from replyclock.connectors.http import Deadline, HttpClient, HttpError
from replyclock.redaction import MASK, MIN_SECRET_LENGTH, RedactingFilter, redact, register_secrets
from tests.support.ingesting import FakeApi

# Characters a credential may hold (base64, JWTs, URL-safe tokens, passphrases), a few outside ASCII.
SECRET_ALPHABET = st.sampled_from(list("abcXYZ0189-_.~+/= ") + ["é", '"', "😀", "\\"])
# Surrounding text shares no character with a secret or with its encodings, so nothing can rebuild one by chance.
AROUND = st.text(alphabet=st.sampled_from(list("!#&*(),;:<>?[]{}|`^'")), max_size=30)


def encode_char(char: str, how: str) -> str:
    if how == "url":
        return urllib.parse.quote(char, safe="")
    if how == "url_upper":
        return urllib.parse.quote(char, safe="").upper() if "%" in urllib.parse.quote(char, safe="") else char
    if how == "url_lower":
        return urllib.parse.quote(char, safe="").lower() if "%" in urllib.parse.quote(char, safe="") else char
    if how == "form":
        return urllib.parse.quote_plus(char, safe="")
    if how == "json":
        return json.dumps(char)[1:-1]
    if how == "json_ascii":
        return "".join(f"\\u{unit:04x}" for unit in _utf16(char))
    if how == "json_slash":
        return "\\/" if char == "/" else json.dumps(char, ensure_ascii=False)[1:-1]
    return char


def _utf16(char: str) -> list[int]:
    data = char.encode("utf-16-be")
    return [int.from_bytes(data[i : i + 2], "big") for i in range(0, len(data), 2)]


ENCODINGS = ["raw", "url", "url_upper", "url_lower", "form", "json", "json_ascii", "json_slash"]


@st.composite
def echoed(draw: st.DrawFn) -> tuple[str, str]:
    """A secret, and what a platform echoed of it: each character in some encoding, perhaps cut short."""
    secret = draw(st.text(alphabet=SECRET_ALPHABET, min_size=MIN_SECRET_LENGTH, max_size=48))
    uniform = draw(st.booleans())
    first = draw(st.sampled_from(ENCODINGS))
    kept = draw(st.integers(min_value=MIN_SECRET_LENGTH, max_value=len(secret)))
    pieces = [encode_char(char, first if uniform else draw(st.sampled_from(ENCODINGS))) for char in secret[:kept]]
    return secret, "".join(pieces)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(echoed(), AROUND, AROUND)
def test_an_echoed_secret_is_masked_in_every_encoding_and_when_cut_short(
    case: tuple[str, str], before: str, after: str
) -> None:
    secret, echo = case
    register_secrets([secret])

    masked = redact(before + echo + after)

    assert echo not in masked
    assert masked == before + MASK + after


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet=st.sampled_from(list("!#&*(),;:<>?[]{}|`^' \n")), max_size=80))
def test_text_without_a_secret_is_left_as_it_is(text: str) -> None:
    register_secrets(["s3cr3t-token-value"])

    assert redact(text) == text


def test_log_records_are_masked_in_message_fields_and_exceptions() -> None:
    secret = "tok-log-9d2e7a1f"
    register_secrets([secret])
    encoded = urllib.parse.quote(secret, safe="")
    record = logging.LogRecord("t", logging.WARNING, __file__, 1, "body %s", (json.dumps({"t": secret[:10]}),), None)
    record.reason = f"answered 401: {encoded}"
    try:
        raise ValueError(f"echo \\u{ord(secret[0]):04x}{secret[1:]}")
    except ValueError as error:
        record.exc_info = (ValueError, error, error.__traceback__)

    RedactingFilter().filter(record)

    assert secret[:MIN_SECRET_LENGTH] not in str(record.msg) and MASK in str(record.msg)
    assert encoded not in record.reason and record.reason == f"answered 401: {MASK}"
    assert secret[1:] not in record.exception


@pytest.fixture
def api(httpserver_ipv4: HTTPServer) -> FakeApi:
    return FakeApi(httpserver_ipv4)


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_an_error_snippet_cut_inside_an_echoed_token_shows_no_part_of_it(api: FakeApi, encoding: str) -> None:
    # Given a platform that echoes our token, in some encoding, across the 300-byte cut of our error snippets
    secret = "tok/Live+9f8e7d6c5b4a3210zyxw"
    register_secrets([secret])
    echo = "".join(encode_char(char, encoding) for char in secret)

    def answer(request: Request) -> Response:
        return Response("x" * 290 + echo + " trailing", status=401)

    api.route("^/me$", answer)

    with pytest.raises(HttpError) as raised:
        HttpClient(deadline=Deadline.unlimited(), max_attempts=1).get(f"{api.url}/me")

    message = str(raised.value)
    assert MASK in message
    assert echo[:MIN_SECRET_LENGTH] not in message and secret[:MIN_SECRET_LENGTH] not in message
