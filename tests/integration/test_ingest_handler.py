"""The ingest function invoked as EventBridge Scheduler invokes it, against moto and local servers."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from pydantic import ValidationError
from pytest_httpserver import HTTPServer

from devtools.localstack.lambda_runtime import FakeLambdaContext, Handler
from replyclock.dal.posts import PostStore
from replyclock.dal.sources import SourceStore, lease_key
from replyclock.dal.table import get_table
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import UnknownSource
from tests.support.fixtures import load_event
from tests.support.ingesting import FIXTURES, fixture

BEARER = "x-bearer-token-for-handler-tests"


@pytest.fixture
def event() -> dict[str, str]:
    return load_event("ingest_source.json")


@pytest.fixture
def replay_source(table: str, event: dict[str, str], tmp_path: Path) -> Source:
    export = shutil.copy(FIXTURES / "replay" / "small_twcs.csv", tmp_path / "export.csv")
    source = Source(id=event["source_id"], kind=SourceKind.REPLAY, replay_uri=str(export))
    SourceStore(table).put(source)
    return source


def test_the_scheduled_event_polls_the_source_it_names(
    ingest_handler: Handler, event: dict[str, str], replay_source: Source, table: str, lambda_context: FakeLambdaContext
) -> None:
    # Given the source named by events/ingest_source.json, a replay of a small export
    # When the function is invoked with the event
    result = ingest_handler(event, lambda_context)

    # Then its posts are in the table, its cursor is at the end, and its lease is free again
    assert result["status"] == "completed"
    assert result["ingested"] == 5
    posts = PostStore(table).conversation_posts("x", "9")
    assert {post.id for post in posts} == {"9", "10", "11"}
    assert SourceStore(table).load_cursor(replay_source.id).value["done"] is True
    assert "Item" not in get_table(table).get_item(Key=lease_key(replay_source.id))


def test_a_poll_emits_its_metrics_per_source(
    ingest_handler: Handler,
    event: dict[str, str],
    replay_source: Source,
    lambda_context: FakeLambdaContext,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # Given a configured source
    # When it is polled
    ingest_handler(event, lambda_context)

    # Then one EMF document carries the ingest metrics with the source as dimension
    documents = [json.loads(line) for line in capsys.readouterr().out.splitlines() if '"_aws"' in line]
    ingest = next(document for document in documents if "IngestedPosts" in document)
    assert ingest["source"] == replay_source.id
    assert ["source", "service"] in ingest["_aws"]["CloudWatchMetrics"][0]["Dimensions"]
    assert ingest["IngestedPosts"] == [5.0]
    assert ingest["IngestRejected"] == [1.0]
    assert ingest["IngestThrottled"] == [0.0]
    assert ingest["IngestLagSeconds"][0] > 0


def test_an_x_source_is_polled_with_credentials_from_secrets_manager(
    ingest_handler: Handler,
    event: dict[str, str],
    table: str,
    httpserver_ipv4: HTTPServer,
    lambda_context: FakeLambdaContext,
) -> None:
    # Given an X source whose bearer token is in Secrets Manager, and X answering on a local server
    secret = json.dumps({"bearer_token": BEARER})
    boto3.client("secretsmanager").create_secret(Name="replyclock/acme-x", SecretString=secret)
    authorized = {"Authorization": f"Bearer {BEARER}"}
    for timeline, body in (("mentions", "mentions.json"), ("tweets", "tweets.json")):
        httpserver_ipv4.expect_request(f"/2/users/1001/{timeline}", headers=authorized).respond_with_json(
            fixture("x", body)
        )
    source = Source(
        id=event["source_id"],
        kind=SourceKind.X,
        brand_id="acme",
        account_id="1001",
        account_handle="AcmeHelp",
        base_url=httpserver_ipv4.url_for("").rstrip("/"),
        credentials_name="replyclock/acme-x",
        initial_lookback_hours=24 * 30,
    )
    SourceStore(table).put(source)

    # When the function is invoked
    result = ingest_handler(event, lambda_context)

    # Then the posts are stored under their conversations
    assert result["ingested"] == 6
    thread = PostStore(table).conversation_posts("x", "1860000000000000001")
    assert {post.id for post in thread} == {"1860000000000000001", "1860000000000000002", "1860000000000000004"}


def test_a_source_being_polled_is_not_polled_twice(
    ingest_handler: Handler, event: dict[str, str], replay_source: Source, table: str, lambda_context: FakeLambdaContext
) -> None:
    # Given another invocation holding the source's lease
    assert SourceStore(table).acquire_lease(replay_source.id, "other", datetime.now(UTC), timedelta(minutes=5))

    # When a duplicate schedule delivery arrives
    result = ingest_handler(event, lambda_context)

    # Then it reads and writes nothing
    assert result["status"] == "busy"
    assert PostStore(table).conversation_posts("x", "9") == []


def test_a_disabled_source_is_not_polled(
    ingest_handler: Handler, event: dict[str, str], replay_source: Source, table: str, lambda_context: FakeLambdaContext
) -> None:
    # Given the source switched off
    SourceStore(table).put(replay_source.model_copy(update={"enabled": False}))

    # When its schedule fires
    result = ingest_handler(event, lambda_context)

    # Then nothing is read
    assert result["status"] == "disabled"
    assert PostStore(table).conversation_posts("x", "9") == []


def test_an_unknown_source_fails_the_invocation(
    ingest_handler: Handler, table: str, lambda_context: FakeLambdaContext
) -> None:
    # Given a schedule naming a source nobody configured
    # When it fires
    # Then the invocation fails, so the Errors metric shows the misconfiguration
    with pytest.raises(UnknownSource):
        ingest_handler({"source_id": "nobody"}, lambda_context)


def test_an_event_that_is_neither_a_tick_nor_a_source_id_is_refused(
    ingest_handler: Handler, table: str, lambda_context: FakeLambdaContext
) -> None:
    # Given an input that misspells source_id (the tick is {})
    # When it fires
    # Then the event is refused before anything is read
    with pytest.raises(ValidationError):
        ingest_handler({"source": "acme-x"}, lambda_context)
