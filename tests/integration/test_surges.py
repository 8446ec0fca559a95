"""Surges through the stream path, the sweeper handler, the alerts topic and GET /brands/{id}/surges."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.alert_outbox import AlertOutbox
from replyclock.dal.open_waits import OpenWaitIndex
from replyclock.dal.surges import SurgeEpisode, SurgeStore
from replyclock.logic.surges import slot_start
from replyclock.models.domain import Brand, SLAPolicy, SLATargets
from replyclock.services.measuring import directory_from
from replyclock.services.surging import SurgeAlert, SurgeWatch, UnansweredTopPosts, watch_surges
from replyclock.services.sweeping import sweep
from tests.support.api import ApiClient, ApiResponse, http_event
from tests.support.builders import T0, customer
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme", sla_policies=[SLAPolicy(targets=SLATargets(normal=4 * 3600))])
# A quiet brand: one mention at 9:20, then eight customers within four minutes of 10:00 (reach 10 to 80).
BACKGROUND = [customer("b1", -40, conversation="b1", author="regular")]
BURST = [
    customer(f"s{n}", n * 0.5, "@acme is it down?", conversation=f"s{n}", author=f"user{n}", reach=10 * n)
    for n in range(1, 9)
]


def measured_now(pipeline: Pipeline) -> None:
    """Run the stream path with the clock at the burst, as live: the aggregate step counts only slots the sweeper
    can still read (the last four weeks), so a test dated T0 must not depend on how long ago T0 is."""
    with time_machine.travel(T0 + timedelta(minutes=4), tick=True):
        pipeline.run()


def measured(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(BACKGROUND)
    pipeline.write(reversed(BURST))
    measured_now(pipeline)
    pipeline.write(BURST)  # redelivered: nothing changes
    measured_now(pipeline)


def sweep_at(pipeline: Pipeline, minutes: float) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The sweeper's answer at T0 + minutes, and the surge alerts it published (read while the clock is there:
    the inbox drops messages older than its retention)."""
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(T0 + timedelta(minutes=minutes), tick=False):
        response: dict[str, Any] = handler(load_event("sweep_schedule.json"), FakeLambdaContext())
        alerts = [message for message in pipeline.alerts() if message.get("kind") == "surge"]
    return response, alerts


def emitted(output: str, metric: str) -> list[float]:
    """The values of one EMF metric of brand acme on x, as the sweeper printed them."""
    values: list[float] = []
    for line in output.splitlines():
        if line.startswith("{") and '"_aws"' in line:
            record = json.loads(line)
            if metric in record and (record.get("brand"), record.get("channel")) == ("acme", "x"):
                values.extend(record[metric])
    return values


def test_arrivals_are_counted_once_per_slot_through_the_stream_path(pipeline: Pipeline) -> None:
    measured(pipeline)

    counts = SurgeStore(pipeline.table_name).arrivals("acme", T0 - timedelta(hours=1), T0 + timedelta(minutes=5))

    assert counts == {"x": {T0 - timedelta(minutes=40): 1, T0: 8}}


def test_a_burst_opens_one_surge_alerts_once_with_its_top_posts_and_closes_when_the_rate_returns(
    pipeline: Pipeline, api: ApiClient, capsys: pytest.CaptureFixture[str]
) -> None:
    measured(pipeline)
    capsys.readouterr()

    # When the sweeper runs during the burst, and again a minute later
    first, first_alerts = sweep_at(pipeline, 4)
    opening_output = capsys.readouterr().out
    second, second_alerts = sweep_at(pipeline, 5)

    # Then one surge opened and its alert went out once, with the most exposed unanswered posts
    assert (first["surges_opened"], second["surges_opened"]) == (1, 0)
    [alert] = first_alerts
    assert second_alerts == []
    # The metrics the alarm and the dashboard read: one surge counted, open (MentionSurgeAlarm), 32 times the floor
    assert emitted(opening_output, "MentionSurge") == [1.0]
    assert emitted(opening_output, "OpenSurges") == [1.0]
    assert emitted(opening_output, "SurgeRatio") == [32.0]
    assert (alert["brand"], alert["channel"], alert["arrivals"], alert["window_minutes"]) == ("acme", "x", 8, 5)
    assert alert["surge_id"] == "acme:x:2026-11-18T10:00"
    assert [post["post_id"] for post in alert["top_posts"]] == ["s8", "s7", "s6"]
    assert [post["exposure"] for post in alert["top_posts"]] == [80, 70, 60]
    assert alert["top_posts"][0]["excerpt"] == "@acme is it down?"

    api.now = T0 + timedelta(minutes=6)
    body = api.call("api_brand_surges.json").json()
    assert [surge["id"] for surge in body["open"]] == ["acme:x:2026-11-18T10:00"]
    [listed] = body["surges"]
    assert (listed["status"], listed["arrivals"], listed["peak_arrivals_per_5min"]) == ("open", 8, 8)
    assert listed["expected"] == 0.25 and listed["ratio"] == 32.0

    # When 15 quiet minutes of complete slots have passed
    capsys.readouterr()
    _, closing_alerts = sweep_at(pipeline, 21)
    assert emitted(capsys.readouterr().out, "OpenSurges") == [0.0]

    # Then it is closed, at the slot the rate was judged back, and no new alert went out
    api.now = T0 + timedelta(minutes=22)
    closed = api.call("api_brand_surges.json").json()
    assert closed["open"] == []
    [episode] = closed["surges"]
    assert episode["status"] == "closed"
    assert episode["ended_at"] == slot_start(T0 + timedelta(minutes=21)).isoformat().replace("+00:00", "Z")
    assert closing_alerts == []


@pytest.mark.parametrize(
    ("query", "status", "field"),
    [
        ({"days": "0"}, 400, "days"),
        ({"days": "91"}, 400, "days"),
        ({"days": "1e9"}, 400, "days"),
        ({"days": "7; DROP TABLE"}, 400, "days"),
        ({"limit": "100000"}, 400, "limit"),
        ({"channel": "x' OR 1=1 --"}, 400, "channel"),
        ({"channel": "x" * 10_000}, 400, "channel"),
    ],
)
def test_hostile_parameters_get_a_400_naming_the_field(
    api: ApiClient, pipeline: Pipeline, query: dict[str, str], status: int, field: str
) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_brand_surges.json", query=query)

    assert response.status == status
    assert response.json()["field"] == field
    assert "Traceback" not in response.body


def test_an_unknown_brand_is_404_and_a_quiet_one_has_no_surges(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])

    unknown = api.call("api_brand_surges.json", path="/brands/nobody/surges")
    quiet = api.call("api_brand_surges.json")

    assert unknown.status == 404
    assert quiet.status == 200 and (quiet.json()["open"], quiet.json()["surges"]) == ([], [])


class FailingFirst:
    """A publisher whose first `failures` publishes fail, as an SNS outage would; records what it delivered."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.delivered: list[SurgeAlert] = []

    def __call__(self, alert: SurgeAlert) -> None:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("SNS unavailable")
        self.delivered.append(alert)


def watch_at(pipeline: Pipeline, minutes: float, publish: Callable[[SurgeAlert], None]) -> SurgeWatch:
    table = pipeline.table_name
    top_posts = UnansweredTopPosts(OpenWaitIndex(table), pipeline.conversations, pipeline.posts)
    now = T0 + timedelta(minutes=minutes)
    return watch_surges(SurgeStore(table), ["acme"], now, publish, AlertOutbox(table), top_posts)


def test_a_failed_surge_alert_stays_pending_through_sla_sweeps_and_a_later_sweep_delivers_it_once(
    pipeline: Pipeline,
) -> None:
    measured(pipeline)
    publisher = FailingFirst(1)

    failed = watch_at(pipeline, 4, publisher)
    # The SLA sweep shares the outbox: it leaves the surge's pending alert alone (and does not trip on it)
    sla = sweep(
        OpenWaitIndex(pipeline.table_name),
        pipeline.conversations,
        pipeline.posts,
        directory_from([ACME]),
        lambda alert: None,
        now=T0 + timedelta(minutes=5),
        outbox=AlertOutbox(pipeline.table_name),
    )
    retried = watch_at(pipeline, 5, publisher)
    quiet = watch_at(pipeline, 6, publisher)

    assert [episode.surge_id for episode in failed.opened] == ["acme:x:2026-11-18T10:00"] and failed.delivered == []
    [(failed_id, reason)] = failed.failed
    assert reason == "RuntimeError: SNS unavailable"
    assert (sla.retried, sla.dropped, sla.alerts) == (0, 0, [])
    assert [alert.alert_id for alert in retried.delivered] == [failed_id] and retried.opened == []
    assert quiet.delivered == [] and AlertOutbox(pipeline.table_name).pending() == []
    assert [alert.alert_id for alert in publisher.delivered] == [failed_id]


def test_an_opening_claimed_by_a_sweep_that_died_is_alerted_by_the_next_one(pipeline: Pipeline) -> None:
    # Given a sweep that claimed the opening and died before recording its alert
    measured(pipeline)
    claimed = SurgeEpisode(
        brand_id="acme",
        channel="x",
        opened_slot=T0,
        opened_at=T0 + timedelta(minutes=3),
        baseline_per_slot=0.25,
        window_slots=1,
        arrivals=6,
        ratio=24.0,
        peak_arrivals=0,
    )
    assert SurgeStore(pipeline.table_name).claim_opening(claimed)
    publisher = FailingFirst(0)

    # When the next sweeps run
    first = watch_at(pipeline, 4, publisher)
    second = watch_at(pipeline, 5, publisher)

    # Then the claimed episode's alert goes out once, and no second episode opens
    assert first.opened == [] and second.opened == [] and second.delivered == []
    [alert] = publisher.delivered
    assert alert.episode.surge_id == "acme:x:2026-11-18T10:00" and alert.episode.arrivals == 6
    stored = SurgeStore(pipeline.table_name).episodes("acme", T0 - timedelta(days=1), T0 + timedelta(hours=1), 10)
    assert [(episode.surge_id, episode.peak_arrivals) for episode in stored] == [("acme:x:2026-11-18T10:00", 8)]


def episode_at(minutes: int, channel: str = "x") -> SurgeEpisode:
    opened = T0 + timedelta(minutes=minutes)
    return SurgeEpisode(
        brand_id="acme",
        channel=channel,
        opened_slot=opened,
        opened_at=opened + timedelta(minutes=1),
        baseline_per_slot=0.5,
        window_slots=3,
        arrivals=12,
        ratio=8.0,
        peak_arrivals=6,
        closed_slot=opened + timedelta(minutes=30),
        closed_at=opened + timedelta(minutes=31),
    )


def test_the_list_is_newest_first_bounded_by_the_window_and_the_limit(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    store = SurgeStore(pipeline.table_name)
    for episode in (
        episode_at(-3 * 24 * 60),  # three days before: outside a 2-day window
        episode_at(0),
        episode_at(60),
        episode_at(120, channel="mastodon"),
    ):
        store.save_episode(episode)
    api.now = T0 + timedelta(hours=3)

    two_days = api.call("api_brand_surges.json", query={"days": "2"}).json()
    limited = api.call("api_brand_surges.json", query={"days": "2", "limit": "2"}).json()
    on_x = api.call("api_brand_surges.json", query={"days": "7", "channel": "x"}).json()

    assert [surge["started_at"] for surge in two_days["surges"]] == [
        "2026-11-18T12:00:00Z",
        "2026-11-18T11:00:00Z",
        "2026-11-18T10:00:00Z",
    ]
    assert not two_days["truncated"] and two_days["open"] == []
    assert [surge["channel"] for surge in limited["surges"]] == ["mastodon", "x"] and limited["truncated"]
    assert [surge["started_at"] for surge in on_x["surges"]] == [
        "2026-11-18T11:00:00Z",
        "2026-11-18T10:00:00Z",
        "2026-11-15T10:00:00Z",
    ]
    assert on_x["surges"][0]["top_posts"] == []
    assert (on_x["surges"][0]["status"], on_x["surges"][0]["window_minutes"], on_x["surges"][0]["expected"]) == (
        "closed",
        15,
        1.5,
    )


@pytest.mark.parametrize("path", ["/brands/" + "a" * 65 + "/surges", "/brands/%00acme/surges", "/brands/ac me/surges"])
def test_a_malformed_brand_id_is_a_400(api: ApiClient, pipeline: Pipeline, path: str) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_brand_surges.json", path=path)

    assert response.status == 400 and response.json()["field"] == "brand_id"


def test_a_caller_reads_only_the_surges_of_its_own_brands(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME, Brand(id="globex", name="Globex")])
    claims = {"sub": "analyst", "iss": "https://issuer.example.com/pool", "replyclock_brands": "[globex]"}

    def as_globex_reader(path: str) -> ApiResponse:
        event = http_event("api_brand_surges.json", path=path)
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        return api.send(event)

    assert as_globex_reader("/brands/globex/surges").status == 200
    forbidden, unknown = as_globex_reader("/brands/acme/surges"), as_globex_reader("/brands/nobody/surges")
    # Existence does not leak: an unknown brand is forbidden too, not 404
    assert (forbidden.status, forbidden.json()["field"]) == (403, "brand")
    assert (unknown.status, unknown.json()["field"]) == (403, "brand")


def test_a_surge_spread_over_channels_opens_brand_wide_only(pipeline: Pipeline) -> None:
    # Given four new customers on x and four on mastodon within four minutes: too few on either channel alone
    pipeline.add_brands([ACME])
    spread = [
        customer(f"{channel}{n}", n, conversation=f"{channel}{n}", author=f"u{n}", channel=channel, reach=n)
        for channel in ("x", "mastodon")
        for n in range(1, 5)
    ]
    pipeline.write(spread)
    measured_now(pipeline)
    publisher = FailingFirst(0)

    # When the sweeper runs
    watch = watch_at(pipeline, 4, publisher)

    # Then one surge opens, for the brand as a whole (channel "*"), its top posts from both channels
    assert [episode.surge_id for episode in watch.opened] == ["acme:*:2026-11-18T10:00"]
    [alert] = publisher.delivered
    assert [(post.channel, post.post_id) for post in alert.episode.top_posts] == [
        ("mastodon", "mastodon4"),
        ("x", "x4"),
        ("mastodon", "mastodon3"),
    ]
    assert watch.open_now == {("acme", "*"): True, ("acme", "mastodon"): False, ("acme", "x"): False}
