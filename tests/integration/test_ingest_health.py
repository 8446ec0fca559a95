"""GET /health from what ingest really writes: a failed poll makes its source failing, the next success heals it."""

from __future__ import annotations

from collections.abc import Generator
from datetime import datetime, timedelta
from typing import Any

import pytest

from replyclock.connectors.base import Page
from replyclock.connectors.http import HttpError
from replyclock.dal.sources import SourceStore
from replyclock.models.sources import Source, SourceKind
from replyclock.redaction import register_secrets
from replyclock.services.dispatching import poll_one
from replyclock.services.ingesting import PollContext
from tests.support.api import ApiClient
from tests.support.builders import customer
from tests.support.pipeline import Pipeline

TOKEN = "sk-live-health-7f3a9c2e41"


class ScriptedConnector:
    """Each poll either fails with the platform echoing our token, or reads one page of posts."""

    def __init__(self, fail: bool, posts: tuple[Any, ...] = ()) -> None:
        self.fail = fail
        self.posts = posts

    def pages(self, cursor: dict[str, Any]) -> Generator[Page]:
        if self.fail:
            raise HttpError(f"GET /2/users/1/mentions answered 401: invalid token {TOKEN}", status=401)
        yield Page(posts=self.posts, cursor={"offset": int(cursor.get("offset", 0)) + len(self.posts)})


def poll(pipeline: Pipeline, at: datetime, connector: ScriptedConnector) -> None:
    def build(source: Source, **_: Any) -> ScriptedConnector:
        return connector

    poll_one(
        "acme-x",
        PollContext(
            table_name=pipeline.table_name,
            remaining_ms=lambda: 60_000,
            owner=f"poll-{at.isoformat()}",
            now=lambda: at,
            build=build,
        ),
    )


def health(api: ApiClient) -> dict[str, Any]:
    response = api.call("api_health.json")
    assert response.status == 200, response.body
    [source] = response.json()["sources"]
    return {"overall": response.json()["status"], **source}


@pytest.fixture
def source(pipeline: Pipeline) -> None:
    register_secrets([TOKEN])
    SourceStore(pipeline.table_name).put(
        Source(
            id="acme-x",
            kind=SourceKind.X,
            brand_id="acme",
            account_id="1001",
            account_handle="AcmeHelp",
            credentials_name="replyclock/acme-x",
        )
    )


@pytest.mark.usefixtures("source")
def test_three_failed_polls_make_a_never_polled_source_failing_with_the_redacted_error(
    api: ApiClient, pipeline: Pipeline
) -> None:
    for minute in (15, 10, 5):
        with pytest.raises(HttpError):
            poll(pipeline, api.now - timedelta(minutes=minute), ScriptedConnector(fail=True))

    found = health(api)

    assert (found["overall"], found["status"]) == ("degraded", "failing")
    assert found["last_error"].startswith("HttpError: GET /2/users/1/mentions answered 401")
    assert TOKEN not in found["last_error"] and "***" in found["last_error"]
    assert found["last_error_at"] is not None and found["last_success_at"] is None


@pytest.mark.usefixtures("source")
def test_a_source_that_once_succeeded_is_failing_after_a_failed_poll_and_recovers_on_the_next_success(
    api: ApiClient, pipeline: Pipeline
) -> None:
    posts = (customer("1", 0), customer("2", 30, author="bob", conversation="c2"))
    newest = max(post.created_at for post in posts)
    poll(pipeline, api.now - timedelta(minutes=20), ScriptedConnector(fail=False, posts=posts))
    ok = health(api)
    with pytest.raises(HttpError):
        poll(pipeline, api.now - timedelta(minutes=10), ScriptedConnector(fail=True))
    failing = health(api)
    poll(pipeline, api.now - timedelta(minutes=5), ScriptedConnector(fail=False))
    recovered = health(api)

    assert ok["status"] == "ok" and datetime.fromisoformat(ok["newest_post_at"]) == newest
    assert failing["status"] == "failing" and failing["overall"] == "degraded"
    assert recovered["status"] == "ok" and recovered["overall"] == "ok"
    assert recovered["lag_seconds"] == 300
    # An empty poll does not forget the newest post seen, and the last error stays as history.
    assert datetime.fromisoformat(recovered["newest_post_at"]) == newest
    assert recovered["last_error"] == failing["last_error"]


@pytest.mark.usefixtures("source")
def test_a_replay_of_older_posts_does_not_move_the_newest_post_time_back(api: ApiClient, pipeline: Pipeline) -> None:
    late, early = customer("2", 90), customer("1", 0, conversation="c0")
    poll(pipeline, api.now - timedelta(minutes=20), ScriptedConnector(fail=False, posts=(late,)))
    poll(pipeline, api.now - timedelta(minutes=10), ScriptedConnector(fail=False, posts=(early,)))

    assert datetime.fromisoformat(health(api)["newest_post_at"]) == late.created_at
