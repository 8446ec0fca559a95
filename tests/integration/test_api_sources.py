"""Sources through the API: CRUD, validation before anything is stored, and the dry run (moto, a fake X)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from pytest_httpserver import HTTPServer

from replyclock.dal import credentials
from replyclock.dal.posts import PostStore
from replyclock.dal.sources import SourceStore, lease_key
from replyclock.dal.table import get_table
from tests.support.api import ApiClient
from tests.support.ingesting import fixture, json_response
from tests.support.pipeline import Pipeline

# Distinctive, so a leak into any answer is unmistakable.
BEARER = "x-bearer-7f3c19-never-in-an-answer"
SECRET = "replyclock/acme-x"


@pytest.fixture
def brand(api: ApiClient, pipeline: Pipeline) -> Iterator[str]:
    credentials.clear_cache()
    assert api.call("api_brand_put.json").status in (200, 201)
    yield "acme"
    credentials.clear_cache()


def store_secret(name: str = SECRET, value: str | None = None) -> None:
    boto3.client("secretsmanager").create_secret(
        Name=name, SecretString=value if value is not None else json.dumps({"bearer_token": BEARER})
    )


def x_source(**changes: Any) -> dict[str, Any]:
    return {
        "kind": "x",
        "brand_id": "acme",
        "account_id": "1001",
        "account_handle": "AcmeHelp",
        "credentials_name": SECRET,
        **changes,
    }


def put(api: ApiClient, source_id: str, body: Any, query: dict[str, str] | None = None) -> Any:
    return api.call("api_source_put.json", path=f"/sources/{source_id}", body=body, query=query)


def test_put_creates_a_source_that_get_reads_back_without_its_credentials(api: ApiClient, brand: str) -> None:
    # Given a brand and the source's credentials in Secrets Manager
    store_secret()

    # When the source is PUT, then read back
    created = put(api, "acme-x", x_source(poll_every_seconds=120))
    read = api.call("api_source_get.json")

    # Then it was created (201) as sent, due at the next tick, and no answer carries the credentials' value
    assert created.status == 201, created.body
    assert read.status == 200
    body = read.json()
    assert (body["id"], body["kind"], body["brand_id"], body["account_handle"]) == ("acme-x", "x", "acme", "acmehelp")
    assert (body["credentials_name"], body["poll_every_seconds"], body["enabled"]) == (SECRET, 120, True)
    assert body["polling"] == {"next_poll_at": None, "last_poll_at": None, "last_poll_status": None, "last_error": None}
    assert BEARER not in created.body + read.body


def test_put_again_replaces_the_source_and_answers_200(api: ApiClient, brand: str) -> None:
    store_secret()
    assert put(api, "acme-x", x_source()).status == 201

    replaced = put(api, "acme-x", x_source(enabled=False, poll_every_seconds=900))

    assert replaced.status == 200
    stored = SourceStore(_table_name()).get("acme-x")
    assert stored is not None and (stored.enabled, stored.poll_every_seconds) == (False, 900)


def _table_name() -> str:
    from replyclock.settings import get_settings

    return get_settings().table_name


def test_get_sources_lists_every_source_by_id(api: ApiClient, brand: str) -> None:
    store_secret()
    put(api, "acme-x", x_source())
    put(api, "acme-backfill", {"kind": "replay", "replay_uri": "s3://exports/acme.csv"})

    listed = api.call("api_sources.json")

    assert listed.status == 200
    assert [item["id"] for item in listed.json()["items"]] == ["acme-backfill", "acme-x"]


def test_delete_removes_the_source_and_keeps_its_cursor(api: ApiClient, brand: str) -> None:
    # Given a source that has been polled (a cursor)
    store_secret()
    put(api, "acme-x", x_source())
    store = SourceStore(_table_name())
    store.save_cursor("acme-x", {"mentions": {"since_id": "42"}}, 0, api.now)

    # When it is deleted
    deleted = api.call("api_source_delete.json")

    # Then it is gone (GET and a second DELETE are 404), and re-adding it would resume from its cursor
    assert deleted.status == 200 and deleted.json() == {"id": "acme-x", "deleted": True, "cursor_kept": True}
    assert api.call("api_source_get.json").status == 404
    assert api.call("api_source_delete.json").status == 404
    assert store.load_cursor("acme-x").value == {"mentions": {"since_id": "42"}}


def test_an_unknown_kind_is_a_422_naming_the_field(api: ApiClient, brand: str) -> None:
    store_secret()

    answer = put(api, "acme-x", x_source(kind="myspace"))

    assert answer.status == 422 and answer.json()["field"] == "kind"
    assert api.call("api_source_get.json").status == 404


def test_an_unknown_brand_is_a_422(api: ApiClient, brand: str) -> None:
    store_secret()

    answer = put(api, "acme-x", x_source(brand_id="globex"))

    assert answer.status == 422
    assert answer.json() == {
        "message": "brand 'globex' is not configured (PUT /brands/globex first)",
        "field": "brand_id",
    }
    assert api.call("api_source_get.json").status == 404


def test_credentials_that_do_not_exist_are_a_422_naming_them(api: ApiClient, brand: str) -> None:
    answer = put(api, "acme-x", x_source(credentials_name="replyclock/nothing-here"))

    assert answer.status == 422
    assert answer.json() == {
        "message": "cannot read credentials 'replyclock/nothing-here'",
        "field": "credentials_name",
    }


def test_credentials_that_are_not_a_json_object_are_a_422_without_their_value(api: ApiClient, brand: str) -> None:
    store_secret(value=BEARER)

    answer = put(api, "acme-x", x_source())

    assert answer.status == 422 and answer.json()["field"] == "credentials_name"
    assert "not a JSON object" in answer.json()["message"] and BEARER not in answer.body


def test_credentials_without_the_networks_keys_are_a_422(api: ApiClient, brand: str) -> None:
    store_secret(value=json.dumps({"token": BEARER}))

    answer = put(api, "acme-x", x_source())

    assert answer.status == 422 and answer.json()["field"] == "credentials_name"
    assert "lack bearer_token" in answer.json()["message"] and BEARER not in answer.body


def test_credentials_outside_the_readable_prefix_are_a_422(api: ApiClient, brand: str) -> None:
    store_secret("prod/database", json.dumps({"bearer_token": BEARER}))

    answer = put(api, "acme-x", x_source(credentials_name="prod/database"))

    assert answer.status == 422 and answer.json()["field"] == "credentials_name"
    assert "replyclock/" in answer.json()["message"]


def test_a_source_missing_what_its_kind_needs_is_a_422(api: ApiClient, brand: str) -> None:
    answer = put(api, "acme-mastodon", {"kind": "mastodon", "brand_id": "acme", "account_id": "7"})

    assert answer.status == 422
    assert "account_handle" in answer.json()["message"] and "credentials_name" in answer.json()["message"]


@pytest.mark.parametrize(
    "changes",
    [{"poll_every_seconds": 30}, {"surprise": 1}, {"account_handle": "a" * 101}, {"replay_uri": "/etc/passwd"}],
)
def test_out_of_range_unknown_and_oversized_fields_are_422(api: ApiClient, brand: str, changes: dict[str, Any]) -> None:
    store_secret()

    answer = put(api, "acme-x", x_source(**changes))

    assert answer.status == 422, answer.body
    assert answer.json()["field"] == next(iter(changes))


@pytest.mark.parametrize("source_id", ["-starts-with-a-dash", "a" * 65, "has%20space"])
def test_a_bad_source_id_is_a_400(api: ApiClient, brand: str, source_id: str) -> None:
    store_secret()

    answer = put(api, source_id, x_source())
    read = api.call("api_source_get.json", path=f"/sources/{source_id}")

    assert (answer.status, read.status) == (400, 400)
    assert answer.json()["field"] == "source_id"


@pytest.fixture
def fake_x(httpserver_ipv4: HTTPServer) -> str:
    """X answering the brand's two timelines on a local server, for the bearer token of the secret only."""
    authorized = {"Authorization": f"Bearer {BEARER}"}
    for timeline, body in (("mentions", "mentions.json"), ("tweets", "tweets.json")):
        httpserver_ipv4.expect_request(f"/2/users/1001/{timeline}", headers=authorized).respond_with_json(
            fixture("x", body)
        )
    return httpserver_ipv4.url_for("").rstrip("/")


def test_a_dry_run_reports_what_the_first_poll_would_fetch_and_stores_nothing(
    api: ApiClient, brand: str, fake_x: str
) -> None:
    # Given credentials and X answering
    store_secret()

    # When the source is PUT as a dry run
    answer = put(api, "acme-x", x_source(base_url=fake_x, initial_lookback_hours=720), {"dry_run": "true"})

    # Then the report counts what the two timelines hold and shows the first ids
    assert answer.status == 200, answer.body
    report = answer.json()["dry_run"]
    assert (report["status"], report["would_store"], report["rejected"]) == ("completed", 6, 0)
    assert report["first_post_ids"] and all(post_id.startswith("18600") for post_id in report["first_post_ids"])
    assert report["from_stored_cursor"] is False and answer.json()["polling"] is None
    # And nothing was written: no source, cursor, lease or post
    store = SourceStore(_table_name())
    assert store.get("acme-x") is None and store.load_cursor("acme-x").version == 0
    assert "Item" not in get_table(_table_name()).get_item(Key=lease_key("acme-x"))
    assert PostStore(_table_name()).conversation_posts("x", "1860000000000000001") == []
    assert BEARER not in answer.body


def test_a_dry_run_reports_the_network_refusing_the_credentials(
    api: ApiClient, brand: str, httpserver_ipv4: HTTPServer
) -> None:
    # Given X refusing the token (and echoing it, as a careless server might)
    store_secret()
    httpserver_ipv4.expect_request("/2/users/1001/mentions").respond_with_response(
        json_response({"detail": f"Unauthorized {BEARER}"}, status=401)
    )

    answer = put(api, "acme-x", x_source(base_url=httpserver_ipv4.url_for("").rstrip("/")), {"dry_run": "true"})

    # Then the dry run answers with the failure, masked, and stores nothing
    assert answer.status == 200
    report = answer.json()["dry_run"]
    assert report["status"] == "failed" and "401" in report["message"]
    assert BEARER not in answer.body
    assert api.call("api_source_get.json").status == 404


def test_a_dry_run_still_validates_first(api: ApiClient, brand: str) -> None:
    answer = put(api, "acme-x", x_source(brand_id="globex"), {"dry_run": "true"})

    assert answer.status == 422 and answer.json()["field"] == "brand_id"
