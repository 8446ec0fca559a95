"""GET /health: per-source status from the items ingestion leaves, read tolerantly."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from typing import Any

import boto3

from replyclock.dal.health import SourceHealthStore
from replyclock.dal.sources import SourceStore, cursor_key, source_key
from replyclock.models.sources import Source
from tests.support.api import ApiClient
from tests.support.pipeline import Pipeline


def put_item(pipeline: Pipeline, item: dict[str, Any]) -> None:
    boto3.resource("dynamodb").Table(pipeline.table_name).put_item(Item=item)


def sources_by_id(api: ApiClient) -> tuple[str, dict[str, dict[str, Any]]]:
    response = api.call("api_health.json")
    assert response.status == 200, response.body
    body = response.json()
    return body["status"], {source["id"]: source for source in body["sources"]}


def test_health_event_without_sources_is_ok(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_health.json")

    assert response.status == 200
    assert response.json()["status"] == "ok" and response.json()["sources"] == []


def test_a_saved_cursor_counts_as_the_last_successful_poll(api: ApiClient, pipeline: Pipeline) -> None:
    # Given a source whose last poll moved its cursor ten minutes ago
    store = SourceStore(pipeline.table_name)
    store.put(Source(id="twcs", kind="replay", replay_uri="s3://bucket/twcs.csv"))
    store.save_cursor("twcs", {"offset": 10}, expected_version=0, now=api.now - timedelta(minutes=10))

    # When health is asked for
    status, sources = sources_by_id(api)

    # Then the source is ok and ten minutes behind
    assert status == "ok"
    assert sources["twcs"]["status"] == "ok"
    assert sources["twcs"]["lag_seconds"] == 600


def test_an_error_after_the_last_success_makes_the_source_failing(api: ApiClient, pipeline: Pipeline) -> None:
    # Given what ingest records (replyclock.dal.health.SourceHealthStore): a success two hours ago, then an error
    SourceStore(pipeline.table_name).put(Source(id="x-acme", kind="replay", replay_uri="s3://bucket/x.csv"))
    health = SourceHealthStore(pipeline.table_name)
    health.record_success("x-acme", api.now - timedelta(hours=2), newest_post_at=api.now - timedelta(hours=3))
    health.record_failure("x-acme", api.now - timedelta(minutes=5), "Throttled", "429 Too Many Requests")

    status, sources = sources_by_id(api)

    assert status == "degraded"
    source = sources["x-acme"]
    assert source["status"] == "failing" and source["last_error"] == "Throttled: 429 Too Many Requests"
    assert source["lag_seconds"] == 7200 and source["newest_post_age_seconds"] == 3 * 3600


def test_an_error_before_the_last_success_is_history(api: ApiClient, pipeline: Pipeline) -> None:
    SourceStore(pipeline.table_name).put(Source(id="m", kind="replay", replay_uri="s3://bucket/m.csv"))
    health = SourceHealthStore(pipeline.table_name)
    health.record_failure("m", api.now - timedelta(days=1), "TimeoutError", "timeout")
    health.record_success("m", api.now)

    _, sources = sources_by_id(api)

    assert sources["m"]["status"] == "ok" and sources["m"]["lag_seconds"] == 0
    assert sources["m"]["last_error"] == "TimeoutError: timeout"


def test_older_attribute_shapes_on_the_cursor_are_still_read(api: ApiClient, pipeline: Pipeline) -> None:
    # Items written before ingest recorded health (or by hand): an error object and epoch times on the cursor
    put_item(pipeline, {**source_key("x-acme"), "item_type": "source", "config": '{"id": "x-acme", "kind": "x"}'})
    put_item(
        pipeline,
        {
            **cursor_key("x-acme"),
            "last_success_at": Decimal(int((api.now - timedelta(hours=2)).timestamp() * 1000)),
            "last_error": {"message": "429 Too Many Requests", "at": (api.now - timedelta(minutes=5)).isoformat()},
            "newest_post_at": Decimal(int((api.now - timedelta(hours=3)).timestamp())),
        },
    )

    _, sources = sources_by_id(api)

    assert sources["x-acme"]["status"] == "failing" and sources["x-acme"]["last_error"] == "429 Too Many Requests"
    assert sources["x-acme"]["lag_seconds"] == 7200 and sources["x-acme"]["newest_post_age_seconds"] == 3 * 3600


def test_unreadable_or_missing_attributes_are_unknown_not_errors(api: ApiClient, pipeline: Pipeline) -> None:
    # Given a source with a broken configuration document and odd cursor attributes
    put_item(pipeline, {**source_key("odd"), "config": "not json", "enabled": "yes"})
    put_item(pipeline, {**cursor_key("odd"), "last_success_at": "someday", "newest_post_at": True, "cursor": "[1, 2]"})

    # When health is asked for
    status, sources = sources_by_id(api)

    # Then it still answers, with the source never having succeeded
    assert status == "degraded"
    assert sources["odd"]["status"] == "never_succeeded"
    assert sources["odd"]["last_success_at"] is None and sources["odd"]["newest_post_at"] is None


def test_a_disabled_source_does_not_degrade_health(api: ApiClient, pipeline: Pipeline) -> None:
    SourceStore(pipeline.table_name).put(
        Source(id="old", kind="replay", replay_uri="s3://bucket/old.csv", enabled=False)
    )

    status, sources = sources_by_id(api)

    assert status == "ok" and sources["old"]["status"] == "disabled"
