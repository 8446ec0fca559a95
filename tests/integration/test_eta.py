"""GET /brands/{id}/eta: the live wait estimate, from posts measured through the stream path and swept."""

from __future__ import annotations

import math
from datetime import UTC, datetime
from typing import Any

import pytest
import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.models.domain import Brand, Post, SLAPolicy, SLATargets
from tests.support.api import ApiClient, http_event
from tests.support.builders import brand, customer
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme", sla_policies=[SLAPolicy(targets=SLATargets(normal=3600))])
NOW = datetime(2026, 11, 20, 10, 30, tzinfo=UTC)  # a Friday
FRIDAY_9 = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
THURSDAY_10 = datetime(2026, 11, 19, 10, 0, tzinfo=UTC)
# Answered this morning, within the hour before this one: this hour of the week, this week.
THIS_HOUR = [60.0, 120.0, 300.0, 600.0, 1_200.0, 2_400.0]
# Answered yesterday: the trailing week only.
YESTERDAY = [5_000.0] * 5


def answered(number: int, start: datetime, minute: int, seconds: float) -> list[Post]:
    author, conversation = f"u{number}", f"c{number}"
    asked = customer(f"p{number}", minute, "@acme help", conversation=conversation, author=author, start=start)
    reply_minute = minute + seconds / 60
    reply = brand(
        f"r{number}", reply_minute, f"@{author} on it", reply_to=f"p{number}", conversation=conversation, start=start
    )
    return [asked, reply]


def posts() -> list[Post]:
    made = [post for n, seconds in enumerate(THIS_HOUR) for post in answered(n, FRIDAY_9, 5 + n, seconds)]
    made += [post for n, seconds in enumerate(YESTERDAY, 100) for post in answered(n, THURSDAY_10, n - 100, seconds)]
    # Two customers still waiting
    made += [
        customer(f"w{n}", 60, "@acme anyone?", conversation=f"w{n}", author=f"w{n}", start=FRIDAY_9) for n in (1, 2)
    ]
    return made


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def measured_and_swept(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(reversed(posts()))
    pipeline.run()
    pipeline.write(posts())  # redelivered in another order: nothing changes
    pipeline.run()
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(NOW, tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())


def eta_of(api: ApiClient, **query: str) -> Any:
    api.now = NOW
    response = api.call("api_brand_eta.json", query=query)
    assert response.status == 200, response.body
    return response.json()


def test_the_estimate_is_this_hours_median_with_the_weeks_5th_to_95th_percentile(
    api: ApiClient, pipeline: Pipeline
) -> None:
    measured_and_swept(pipeline)

    body = eta_of(api, channel="x")

    everything = THIS_HOUR + YESTERDAY
    assert body["basis"] == "hour_of_week" and body["message"] is None
    assert body["expected_seconds"] == pytest.approx(nearest_rank(THIS_HOUR, 0.5), rel=0.01)
    assert body["interval"]["low_seconds"] == pytest.approx(nearest_rank(everything, 0.05), rel=0.01)
    assert body["interval"]["high_seconds"] == pytest.approx(nearest_rank(everything, 0.95), rel=0.01)
    assert body["interval"]["coverage"] == 0.8
    based_on = body["based_on"]
    assert (based_on["recent_answered"], based_on["hour_of_week_answered"]) == (11, 6)
    assert based_on["open_waits"] == 2 and based_on["open_waits_as_of"] is not None
    assert based_on["answers_per_hour"] == pytest.approx(11 / (7 * 24 + 1), abs=1e-6)


def test_brand_wide_and_by_channel_and_priority_the_estimate_is_the_same_when_all_is_one_kind(
    api: ApiClient, pipeline: Pipeline
) -> None:
    measured_and_swept(pipeline)

    by_channel = eta_of(api, channel="x")
    brand_wide = eta_of(api)
    by_priority = eta_of(api, priority="normal")

    assert brand_wide["expected_seconds"] == by_channel["expected_seconds"] == by_priority["expected_seconds"]
    assert brand_wide["interval"] == by_channel["interval"] == by_priority["interval"]
    assert eta_of(api, channel="mastodon")["basis"] == "not_enough_history"


def test_without_enough_answers_it_says_so_instead_of_guessing(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(answered(1, FRIDAY_9, 0, 60.0))
    pipeline.run()

    body = eta_of(api)

    assert body["basis"] == "not_enough_history"
    assert body["expected_seconds"] is None and body["interval"] is None
    assert body["based_on"]["recent_answered"] == 1 and body["based_on"]["open_waits"] is None
    assert body["message"] == "not enough history: 1 answered first waits in the trailing 7 days, at least 5 needed"


def assert_error(response: Any, status: int, field: str | None) -> None:
    assert response.status == status, response.body
    body = response.json()
    assert set(body) == {"message", "field"} and body["field"] == field
    assert "\n" not in body["message"] and "Traceback" not in response.body


@pytest.mark.parametrize(
    ("path", "query", "status", "field"),
    [
        ("/brands/nobody/eta", {}, 404, "brand"),
        ("/brands/acme/eta", {"channel": "X Y"}, 400, "channel"),
        ("/brands/acme/eta", {"channel": "x" * 5_000}, 400, "channel"),
        ("/brands/acme/eta", {"priority": "asap"}, 400, "priority"),
        ("/brands/acme/eta", {"priority": "normal'; DROP TABLE--"}, 400, "priority"),
        ("/brands/" + "a" * 65 + "/eta", {}, 400, "brand_id"),
        ("/brands/%00acme/eta", {}, 400, "brand_id"),
    ],
)
def test_hostile_requests_get_a_one_line_error(
    api: ApiClient, pipeline: Pipeline, path: str, query: dict[str, str], status: int, field: str | None
) -> None:
    pipeline.add_brands([ACME])

    assert_error(api.send(http_event("api_brand_eta.json", path=path, query=query)), status, field)


def test_a_caller_reads_only_the_estimates_of_its_own_brands(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME, Brand(id="globex", name="Globex")])
    claims = {"sub": "analyst", "iss": "https://issuer.example.com/pool", "replyclock_brands": "[globex]"}

    def as_globex_reader(path: str) -> Any:
        event = http_event("api_brand_eta.json", path=path, query={})
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        return api.send(event)

    assert as_globex_reader("/brands/globex/eta").status == 200
    assert_error(as_globex_reader("/brands/acme/eta"), 403, "brand")
    # Existence does not leak: an unknown brand is forbidden too, not 404
    assert_error(as_globex_reader("/brands/nobody/eta"), 403, "brand")


def test_the_route_is_documented(api: ApiClient, pipeline: Pipeline) -> None:
    document = api.call("api_openapi.json").json()

    operation = document["paths"]["/brands/{brand_id}/eta"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} == {"brand_id", "channel", "priority"}
    assert {"200", "400", "404"} <= set(operation["responses"])
    assert "EtaResponse" in document["components"]["schemas"]
