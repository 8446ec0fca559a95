"""Source credentials from Secrets Manager and SSM (moto), and proof that they never reach the logs."""

from __future__ import annotations

import json

import boto3
import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.connectors.http import HttpError
from replyclock.dal.credentials import CredentialsError, get_credentials
from replyclock.dal.sources import SourceStore
from replyclock.models.sources import Source, SourceKind
from replyclock.observability import logger
from tests.support.ingesting import captured_logs, json_response

# Distinctive values, so a leak anywhere in the output is unmistakable.
BEARER = "AAAAAAAAAAAAAAAAAAAAAbearer-1e4f9c-do-not-log"
SSM_TOKEN = "mastodon-token-7d2a0b-do-not-log"


def store_secret(name: str, value: str) -> None:
    boto3.client("secretsmanager").create_secret(Name=name, SecretString=value)


def test_credentials_are_read_from_secrets_manager(table: str) -> None:
    # Given a secret holding a JSON object
    store_secret("replyclock/acme-x", json.dumps({"bearer_token": BEARER}))

    # When the source's credentials are read
    read = get_credentials("replyclock/acme-x")

    # Then its values are there, and they print masked
    assert read.secret("bearer_token") == BEARER
    assert BEARER not in repr(read)


def test_credentials_are_read_from_an_ssm_secure_string(table: str) -> None:
    # Given an SSM SecureString under the credentials path
    boto3.client("ssm").put_parameter(
        Name="/replyclock/acme-mastodon", Value=json.dumps({"access_token": SSM_TOKEN}), Type="SecureString"
    )

    # When credentials named by that path are read
    read = get_credentials("/replyclock/acme-mastodon")

    # Then they are decrypted
    assert read.secret("access_token") == SSM_TOKEN


def test_credentials_are_cached_between_polls(table: str) -> None:
    # Given credentials read once
    store_secret("replyclock/acme-x", json.dumps({"bearer_token": BEARER}))
    get_credentials("replyclock/acme-x")

    # When the secret disappears and they are read again within the cache age
    boto3.client("secretsmanager").delete_secret(SecretId="replyclock/acme-x", ForceDeleteWithoutRecovery=True)

    # Then the cached value is used
    assert get_credentials("replyclock/acme-x").secret("bearer_token") == BEARER


def test_credentials_that_are_not_a_json_object_fail_without_showing_their_value(table: str) -> None:
    # Given a secret holding a bare token instead of a JSON object
    store_secret("replyclock/acme-x", BEARER)

    # When it is read
    with pytest.raises(CredentialsError) as raised:
        get_credentials("replyclock/acme-x")

    # Then the error names the secret, not its content
    assert "replyclock/acme-x" in str(raised.value)
    assert BEARER not in str(raised.value)


def test_missing_credentials_fail_with_their_name(table: str) -> None:
    # Given no such secret
    # When it is read
    # Then the error says which one
    with pytest.raises(CredentialsError, match="replyclock/nothing-here"):
        get_credentials("replyclock/nothing-here")


def test_a_credential_never_reaches_the_logs_even_in_errors(
    table: str, httpserver_ipv4: HTTPServer, lambda_context: FakeLambdaContext
) -> None:
    # Given an X source whose server echoes the Authorization header in its error body
    store_secret("replyclock/acme-x", json.dumps({"bearer_token": BEARER}))

    def echo_token(request: Request) -> Response:
        return json_response({"detail": f"Unauthorized: {request.headers['Authorization']}"}, status=401)

    httpserver_ipv4.expect_request("/2/users/1001/mentions").respond_with_handler(echo_token)
    source = Source(
        id="acme-x",
        kind=SourceKind.X,
        brand_id="acme",
        account_id="1001",
        account_handle="AcmeHelp",
        base_url=httpserver_ipv4.url_for("").rstrip("/"),
        credentials_name="replyclock/acme-x",
    )
    SourceStore(table).put(source)
    ingest_handler = load_handler(REPO_ROOT / "functions" / "ingest" / "app.py")

    # When the poll fails, and code logs the value outright, in a message, a field and an exception
    with captured_logs() as logs, pytest.raises(HttpError) as raised:
        try:
            ingest_handler({"source_id": "acme-x"}, lambda_context)
        finally:
            logger.info(f"careless message with {BEARER}", careless_field={"token": BEARER})
            try:
                raise RuntimeError(f"careless error with {BEARER}")
            except RuntimeError:
                logger.exception("careless exception")

    # Then neither the error nor any log line contains the value; the rest of the message is kept
    output = "\n".join(json.dumps(line) for line in logs)
    assert raised.value.status == 401
    assert BEARER not in str(raised.value)
    assert "Unauthorized: Bearer ***" in str(raised.value)
    assert BEARER not in output
    assert "careless message with ***" in output
    assert "careless error with ***" in output
    assert any(line["message"] == "poll failed" for line in logs)
