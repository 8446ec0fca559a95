"""The ingest tick: one schedule polls every due source, oldest-due first, within its time, never twice at once."""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from pytest_httpserver import HTTPServer

from devtools.localstack.lambda_runtime import FakeLambdaContext, Handler, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal import credentials
from replyclock.dal.posts import PostStore
from replyclock.dal.sources import SourceStore
from replyclock.models.sources import Source, SourceKind
from replyclock.services import dispatching
from replyclock.services.dispatching import PollsFailed, tick
from replyclock.services.ingesting import PollContext
from tests.support.api import ApiClient
from tests.support.fixtures import load_event
from tests.support.ingesting import FIXTURES, fixture
from tests.support.pipeline import Pipeline

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


@pytest.fixture
def export(tmp_path: Path) -> str:
    return str(shutil.copy(FIXTURES / "replay" / "small_twcs.csv", tmp_path / "export.csv"))


def replay(source_id: str, export: str, **changes: object) -> Source:
    return Source(id=source_id, kind=SourceKind.REPLAY, replay_uri=export, **changes)  # type: ignore[arg-type]


def plenty_of_time() -> int:
    return 100_000


def test_the_tick_polls_the_due_sources_only(table: str, export: str) -> None:
    # Given a source never polled (due), one polled a minute ago every 5 minutes (not due), and a disabled one
    store = SourceStore(table)
    for source in (replay("due", export), replay("later", export), replay("off", export, enabled=False)):
        store.put(source)
    store.record_poll(
        "later", status="completed", at=NOW - timedelta(minutes=1), next_poll_at=NOW + timedelta(minutes=4)
    )

    # When the tick runs
    outcome = tick(PollContext(table_name=table, remaining_ms=plenty_of_time, owner="tick-1", now=lambda: NOW))

    # Then only the due source was polled, and its next poll is poll_every_seconds away
    assert [poll.source_id for poll in outcome.polls] == ["due"]
    assert outcome.polls[0].ingested == 5
    due = store.get_configured("due")
    assert due is not None and due.schedule.next_poll_at == NOW + timedelta(seconds=300)
    assert due.schedule.last_poll_status == "completed"


def test_a_second_tick_right_after_polls_nothing(table: str, export: str) -> None:
    SourceStore(table).put(replay("due", export))
    tick(PollContext(table_name=table, remaining_ms=plenty_of_time, owner="tick-1", now=lambda: NOW))

    again = tick(
        PollContext(
            table_name=table, remaining_ms=plenty_of_time, owner="tick-2", now=lambda: NOW + timedelta(minutes=1)
        )
    )

    assert (again.due, again.polls) == (0, [])


def test_a_source_is_due_again_once_its_poll_interval_has_passed(table: str, export: str) -> None:
    SourceStore(table).put(replay("due", export, poll_every_seconds=120))
    tick(PollContext(table_name=table, remaining_ms=plenty_of_time, owner="tick-1", now=lambda: NOW))

    later = tick(
        PollContext(
            table_name=table, remaining_ms=plenty_of_time, owner="tick-3", now=lambda: NOW + timedelta(minutes=2)
        )
    )

    assert [poll.source_id for poll in later.polls] == ["due"]


def test_a_source_whose_lease_is_held_is_not_polled_by_the_tick(table: str, export: str) -> None:
    # Given a due source another invocation is polling (it holds the lease)
    store = SourceStore(table)
    store.put(replay("due", export))
    assert store.acquire_lease("due", "someone-else", NOW, timedelta(minutes=5))

    # When the tick runs
    outcome = tick(PollContext(table_name=table, remaining_ms=plenty_of_time, owner="tick-1", now=lambda: NOW))

    # Then it reads and writes nothing for it
    assert [poll.status.value for poll in outcome.polls] == ["busy"]
    assert PostStore(table).conversation_posts("x", "9") == []


def test_two_ticks_that_both_found_a_source_due_claim_it_once(table: str, export: str) -> None:
    # Given two overlapping ticks that both read the source as due (never polled)
    store = SourceStore(table)
    store.put(replay("due", export))
    [seen] = dispatching.due_sources(store.configured(), NOW)

    # When both claim it
    first = store.claim("due", seen.schedule.next_poll_at, NOW + timedelta(minutes=5))
    second = store.claim("due", seen.schedule.next_poll_at, NOW + timedelta(minutes=5))

    # Then only the first gets it
    assert (first, second) == (True, False)


def test_a_tick_out_of_time_leaves_the_rest_to_the_next_tick_oldest_due_first(table: str, export: str) -> None:
    # Given three due sources: one never polled, one due 10 minutes ago, one due a minute ago
    store = SourceStore(table)
    for source_id in ("a-recent", "b-never", "c-old"):
        store.put(replay(source_id, export))
    store.record_poll("a-recent", status="completed", at=NOW, next_poll_at=NOW - timedelta(minutes=1))
    store.record_poll("c-old", status="completed", at=NOW, next_poll_at=NOW - timedelta(minutes=10))

    # And time for one poll only: the invocation's time runs out once a poll has ended
    def remaining_ms() -> int:
        polled = any(found.schedule.last_poll_status for found in store.configured() if found.source.id == "b-never")
        return 1_000 if polled else 100_000

    # When the tick runs
    outcome = tick(PollContext(table_name=table, remaining_ms=remaining_ms, owner="t", now=lambda: NOW))

    # Then it polled the never-polled one, and left the others, oldest-due first, still due
    assert [poll.source_id for poll in outcome.polls] == ["b-never"]
    assert outcome.left_for_next_tick == ["c-old", "a-recent"]
    assert [found.source.id for found in dispatching.due_sources(store.configured(), NOW)] == ["c-old", "a-recent"]


def test_a_failing_source_is_recorded_and_does_not_stop_the_others(table: str, export: str) -> None:
    # Given a due X source whose credentials are missing, and a due replay
    store = SourceStore(table)
    store.put(
        Source(
            id="a-broken",
            kind=SourceKind.X,
            brand_id="acme",
            account_id="1001",
            account_handle="acmehelp",
            credentials_name="replyclock/missing",
        )
    )
    store.put(replay("b-fine", export))

    # When the tick runs, it fails the invocation naming the broken source
    with pytest.raises(PollsFailed, match="a-broken"):
        tick(PollContext(table_name=table, remaining_ms=plenty_of_time, owner="t", now=lambda: NOW))

    # But the other source was polled, and the failure is on the broken one, due again at its interval
    assert {post.id for post in PostStore(table).conversation_posts("x", "9")} == {"9", "10", "11"}
    broken = store.get_configured("a-broken")
    assert broken is not None and broken.schedule.last_poll_status == "failed"
    assert broken.schedule.last_error == "CredentialsError: cannot read credentials 'replyclock/missing'"
    assert broken.schedule.next_poll_at == NOW + timedelta(seconds=300)


def test_the_scheduled_tick_event_polls_through_the_handler(
    ingest_handler: Handler, table: str, export: str, lambda_context: FakeLambdaContext
) -> None:
    SourceStore(table).put(replay("due", export))

    result = ingest_handler(load_event("ingest_tick.json"), lambda_context)

    assert result["due"] == 1 and [poll["status"] for poll in result["polls"]] == ["completed"]


def test_a_source_added_through_the_api_is_polled_by_the_next_tick(
    api: ApiClient, pipeline: Pipeline, httpserver_ipv4: HTTPServer, lambda_context: FakeLambdaContext
) -> None:
    # Given a brand, credentials in Secrets Manager, and X answering on a local server
    credentials.clear_cache()
    bearer = "x-bearer-end-to-end"
    boto3.client("secretsmanager").create_secret(
        Name="replyclock/acme-x", SecretString=json.dumps({"bearer_token": bearer})
    )
    for timeline, body in (("mentions", "mentions.json"), ("tweets", "tweets.json")):
        httpserver_ipv4.expect_request(
            f"/2/users/1001/{timeline}", headers={"Authorization": f"Bearer {bearer}"}
        ).respond_with_json(fixture("x", body))
    assert api.call("api_brand_put.json").status in (200, 201)

    # When the source is added with one API call, and the schedule's next tick fires
    body = json.loads(load_event("api_source_put.json")["body"])
    body |= {"base_url": httpserver_ipv4.url_for("").rstrip("/"), "initial_lookback_hours": 720}
    assert api.call("api_source_put.json", body=body).status == 201
    ingest_handler = load_handler(REPO_ROOT / "functions" / "ingest" / "app.py")
    result = ingest_handler(load_event("ingest_tick.json"), lambda_context)

    # Then the tick polled it, its posts are stored, and the API shows the poll and a healthy source
    assert [(poll["source_id"], poll["ingested"]) for poll in result["polls"]] == [("acme-x", 6)]
    thread = PostStore(pipeline.table_name).conversation_posts("x", "1860000000000000001")
    assert {post.id for post in thread} == {"1860000000000000001", "1860000000000000002", "1860000000000000004"}
    polling = api.call("api_source_get.json").json()["polling"]
    assert polling["last_poll_status"] == "completed" and polling["next_poll_at"] is not None
    api.now = datetime.now(UTC)
    health = api.call("api_health.json").json()
    assert [(source["id"], source["status"]) for source in health["sources"]] == [("acme-x", "ok")]
    credentials.clear_cache()
