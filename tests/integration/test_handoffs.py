"""Hand-offs ('take it to DM') through the stream path and the API: measured once, whatever the order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from replyclock.models.domain import DEFAULT_HANDOFF_PATTERNS, Brand
from tests.support.api import ApiClient
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory, expected_waits, stored_waits
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
AROUND_T0 = {"brand": "acme", "from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}

# c1: alice is taken to DM, comes back in public, is answered; c2: bob answered in public; c3: carol taken to DM.
POSTS = [
    customer("1", 0, conversation="c1"),
    brand("2", 5, "@alice so sorry! Please DM us your order number", reply_to="1", conversation="c1"),
    customer("3", 90, "@acme still waiting on that DM...", reply_to="2", conversation="c1"),
    brand("4", 95, "@alice found it, refund on its way", reply_to="3", conversation="c1"),
    customer("5", 10, "@acme my parcel is late", conversation="c2", author="bob"),
    brand("6", 20, "@bob it arrives today", reply_to="5", conversation="c2"),
    customer("7", 30, "@acme wrong item", conversation="c3", author="carol"),
    brand("8", 40, "@carol check your DMs", reply_to="7", conversation="c3"),
]


def event_body(name: str) -> dict[str, Any]:
    return json.loads(load_event(name)["body"])  # type: ignore[no-any-return]


def test_hand_offs_through_the_stream_path_are_exact_in_any_order_and_redelivered(pipeline: Pipeline) -> None:
    # Given the posts written newest first (replies before what they answer), then all of them again
    pipeline.add_brands([ACME])
    pipeline.write(reversed(POSTS))
    pipeline.run()
    pipeline.write(POSTS)
    pipeline.run()

    # Then the stored lanes are the pure fold's, hand-off flags included
    stored = stored_waits(pipeline.conversations, {("x", f"c{n}") for n in (1, 2, 3)})
    assert stored == expected_waits(POSTS, brand_directory([ACME]))
    flags = {
        lane[1]: [(wait.start_post_id, wait.handed_off, wait.after_handoff) for wait in waits]
        for lane, waits in stored.items()
    }
    assert flags == {
        "c1": [("1", True, False), ("3", False, True)],
        "c2": [("5", False, False)],
        "c3": [("7", True, False)],
    }


def test_summary_reports_the_hand_off_rate(api: ApiClient, pipeline: Pipeline) -> None:
    # Given three first waits, two of them answered with a hand-off, one customer back in public afterwards
    pipeline.add_brands([ACME])
    pipeline.write(POSTS)
    pipeline.run()

    body = api.call("api_metrics_summary.json", query={**AROUND_T0, "clock": "calendar"}).json()

    assert (body["mentions"], body["responded"], body["handed_off"]) == (3, 3, 2)
    assert body["handoff_rate"] == pytest.approx(2 / 3)
    assert (body["next_waits"], body["after_handoff"]) == (1, 1)


def test_a_brand_without_hand_off_patterns_counts_none(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME.model_copy(update={"handoff_patterns": []})])
    pipeline.write(POSTS)
    pipeline.run()

    body = api.call("api_metrics_summary.json", query={**AROUND_T0, "clock": "calendar"}).json()

    assert (body["handed_off"], body["handoff_rate"], body["after_handoff"]) == (0, 0.0, 0)


def test_put_brand_takes_hand_off_patterns_and_defaults_them(api: ApiClient, pipeline: Pipeline) -> None:
    defaulted = api.call("api_brand_put.json")
    assert defaulted.status in (200, 201), defaulted.body
    assert defaulted.json()["handoff_patterns"] == list(DEFAULT_HANDOFF_PATTERNS)

    replaced = api.call(
        "api_brand_put.json",
        body={**event_body("api_brand_put.json"), "handoff_patterns": [r"\bwhatsapp\b"]},
        headers={"if-match": defaulted.headers["ETag"]},
    )

    assert replaced.status == 200, replaced.body
    stored = pipeline.brands.get("acme")
    assert stored is not None and stored.handoff_patterns == [r"\bwhatsapp\b"]


@pytest.mark.parametrize(
    ("patterns", "field"),
    [
        (["(a+)+$\\1"], "handoff_patterns.0"),  # a backreference: not linear-time, refused
        (["(unclosed"], "handoff_patterns.0"),
        (["x" * 501], "handoff_patterns.0"),
        (["ok", 7], "handoff_patterns.1"),
        ("DM us", "handoff_patterns"),
        ([r"\bdm\b"] * 101, "handoff_patterns"),
    ],
    ids=["backreference", "unbalanced", "too long", "not a string", "not a list", "too many"],
)
def test_hostile_hand_off_patterns_are_422_and_nothing_is_written(
    api: ApiClient, pipeline: Pipeline, patterns: object, field: str
) -> None:
    response = api.call("api_brand_put.json", body={**event_body("api_brand_put.json"), "handoff_patterns": patterns})

    assert response.status == 422, response.body
    assert response.json()["field"] == field
    assert pipeline.brands.get("acme") is None, "nothing is half written"
