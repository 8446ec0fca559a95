"""Surges through the stream path, the sweeper handler, the alerts topic and GET /brands/{id}/surges."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.surges import SurgeStore
from replyclock.logic.surges import slot_start
from replyclock.models.domain import Brand, SLAPolicy, SLATargets
from tests.support.api import ApiClient
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


def measured(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(BACKGROUND)
    pipeline.write(reversed(BURST))
    pipeline.run()
    pipeline.write(BURST)  # redelivered: nothing changes
    pipeline.run()


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
