"""Recovery through the stream path and GET /metrics/recovery: scored once when stored, exact in any order."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from replyclock.logic.sentiment import compound_score
from replyclock.models.domain import Brand
from tests.support.api import ApiClient, http_event
from tests.support.builders import T0, brand, customer
from tests.support.expectations import brand_directory, expected_waits, stored_waits
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
AROUND_T0 = {"brand": "acme", "from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}

# c1 alice recovers (answered in 10 min); c2 bob is still angry (answered in 30 min); c3 carol never posts again
# (answered in 2 h); c4 dave was happy to begin with.
POSTS = [
    customer("1", 0, "@acme my parcel is lost, this is awful", conversation="c1"),
    brand("2", 10, "@alice so sorry! a new one ships today", reply_to="1", conversation="c1"),
    customer("3", 12, "@acme thank you, that is great!", reply_to="2", conversation="c1"),
    customer("4", 0, "@acme the app crashed and I lost my work, terrible", conversation="c2", author="bob"),
    brand("5", 30, "@bob we are looking into it", reply_to="4", conversation="c2"),
    customer("6", 40, "@acme still broken. useless", reply_to="5", conversation="c2", author="bob"),
    customer("7", 0, "@acme worst delivery ever, I am angry", conversation="c3", author="carol"),
    brand("8", 120, "@carol refund issued", reply_to="7", conversation="c3"),
    customer("9", 0, "@acme love the new app", conversation="c4", author="dave"),
    brand("10", 5, "@dave glad you like it", reply_to="9", conversation="c4"),
]
CONVERSATIONS = {("x", f"c{n}") for n in (1, 2, 3, 4)}


def recovery_metrics(emitted: str) -> list[dict[str, Any]]:
    """The EMF documents measure printed that carry a recovery metric of a brand."""
    documents = [json.loads(line) for line in emitted.splitlines() if line.startswith('{"_aws"')]
    return [doc for doc in documents if "brand" in doc and ("Recovered" in doc or "RecoveryFollowUps" in doc)]


def test_the_texts_read_as_the_scenario_says() -> None:
    scores = {post.id: compound_score(post.text) for post in POSTS if post.author_role.value == "customer"}

    assert all(scores[post_id] <= -0.05 for post_id in ("1", "4", "6", "7"))
    assert all(scores[post_id] > -0.05 for post_id in ("3", "9"))


def test_posts_are_scored_when_stored_and_keep_their_first_score(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(POSTS[:1])
    # A later read of the same post with edited text refreshes the text, not the measured score.
    pipeline.write([POSTS[0].model_copy(update={"text": "@acme never mind, all good, thanks!"})])

    (stored,) = pipeline.posts.conversation_posts("x", "c1")

    assert stored.text == "@acme never mind, all good, thanks!"
    assert stored.sentiment == compound_score(POSTS[0].text) < 0


def test_recovery_through_the_stream_path_is_exact_in_any_order_and_redelivered(
    api: ApiClient, pipeline: Pipeline
) -> None:
    # Given the posts written newest first (follow-ups before the answers they follow), then all again
    pipeline.add_brands([ACME])
    pipeline.write(reversed(POSTS))
    pipeline.run()
    pipeline.write(POSTS)
    pipeline.run()

    # Then the stored lanes are the pure fold's, and the first waits carry the sentiments around the answer
    stored = stored_waits(pipeline.conversations, CONVERSATIONS)
    assert stored == expected_waits(POSTS, brand_directory([ACME]))
    around = {lane[1]: (waits[0].sentiment_before, waits[0].sentiment_after) for lane, waits in stored.items()}
    assert around == {
        "c1": (compound_score(POSTS[0].text), compound_score(POSTS[2].text)),
        "c2": (compound_score(POSTS[3].text), compound_score(POSTS[5].text)),
        "c3": (compound_score(POSTS[6].text), None),
        "c4": (compound_score(POSTS[8].text), None),
    }

    # And the API answers from the buckets: alice recovered, bob did not, carol has not posted since
    body = api.call("api_metrics_recovery.json", query=AROUND_T0).json()
    assert (body["negative"], body["followed_up"], body["recovered"], body["no_follow_up"]) == (3, 2, 1, 1)
    assert body["recovery_rate"] == 0.5
    bands = {band["response_band"]: band for band in body["by_response_band"]}
    assert list(bands) == ["under_15m", "15m_to_1h", "1h_to_4h", "over_4h"]
    assert (bands["under_15m"]["recovered"], bands["under_15m"]["recovery_rate"]) == (1, 1.0)
    assert (bands["15m_to_1h"]["followed_up"], bands["15m_to_1h"]["recovery_rate"]) == (1, 0.0)
    assert (bands["1h_to_4h"]["negative"], bands["1h_to_4h"]["no_follow_up"], bands["1h_to_4h"]["recovery_rate"]) == (
        1,
        1,
        None,
    )
    assert bands["over_4h"]["negative"] == 0


def test_measured_one_post_at_a_time_each_follow_up_is_counted_and_emitted_once(
    api: ApiClient, pipeline: Pipeline, capsys: pytest.CaptureFixture[str]
) -> None:
    # Given the posts as they happened, one at a time (the incremental path), the stream redelivering each
    pipeline.add_brands([ACME])
    for post in sorted(POSTS, key=lambda post: post.created_at):
        pipeline.write([post])
        pipeline.run()
    measured = capsys.readouterr().out
    pipeline.write(POSTS)
    pipeline.run()
    replayed = capsys.readouterr().out

    # Then the figures are those of the whole conversations
    body = api.call("api_metrics_recovery.json", query=AROUND_T0).json()
    assert (body["negative"], body["followed_up"], body["recovered"]) == (3, 2, 1)
    assert stored_waits(pipeline.conversations, CONVERSATIONS) == expected_waits(POSTS, brand_directory([ACME]))
    # And measure emitted each follow-up once (bob's and alice's; alice's recovered), per brand
    emitted = sorted(
        (doc["brand"], name, doc[name])
        for doc in recovery_metrics(measured)
        for name in doc
        if name in ("Recovered", "RecoveryFollowUps")
    )
    assert emitted == [
        ("acme", "Recovered", [0.0]),
        ("acme", "Recovered", [1.0]),
        ("acme", "RecoveryFollowUps", [1.0]),
        ("acme", "RecoveryFollowUps", [1.0]),
    ]
    # And re-storing the same posts emits no second recovery metric
    assert recovery_metrics(replayed) == []


def test_a_channel_filter_reads_the_channel_buckets_only(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(POSTS)
    pipeline.run()

    on_x = api.call("api_metrics_recovery.json", query={**AROUND_T0, "channel": "x"}).json()
    elsewhere = api.call("api_metrics_recovery.json", query={**AROUND_T0, "channel": "mastodon"}).json()

    assert (on_x["channel"], on_x["negative"], on_x["recovered"]) == ("x", 3, 1)
    assert (elsewhere["negative"], elsewhere["recovery_rate"]) == (0, None)


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({}, "brand"),
        ({"brand": "acme", "from": "yesterday"}, "from"),
        ({"brand": "acme", "from": "2026-11-01T00:00:00"}, "from"),
        ({"brand": "acme", "from": "2026-11-02T00:00:00Z", "to": "2026-11-01T00:00:00Z"}, "from"),
        ({"brand": "acme", "from": "1900-01-01T00:00:00Z", "to": "1900-01-02T00:00:00Z"}, "from"),
        ({"brand": "acme", "priority": "whenever"}, "priority"),
        ({"brand": "acme", "channel": "x" * 10_000}, "channel"),
        ({"brand": "acme\u0000; DROP TABLE"}, "brand"),
    ],
    ids=["no brand", "not a time", "no timezone", "backwards", "before 1970", "unknown priority", "huge", "control"],
)
def test_hostile_parameters_are_400_naming_the_field(
    api: ApiClient, pipeline: Pipeline, query: dict[str, str], field: str
) -> None:
    pipeline.add_brands([ACME])

    response = api.call("api_metrics_recovery.json", query=query)

    assert response.status == 400, response.body
    body = response.json()
    assert set(body) == {"message", "field"} and body["field"] == field
    assert "\n" not in body["message"] and "Traceback" not in body["message"]


def test_an_unknown_brand_is_404(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_metrics_recovery.json", query={**AROUND_T0, "brand": "nobody"})

    assert response.status == 404, response.body
    assert "nobody" in response.json()["message"]


def test_the_route_is_in_the_openapi_document(api: ApiClient, pipeline: Pipeline) -> None:
    document = api.call("api_openapi.json").json()

    operation = document["paths"]["/metrics/recovery"]["get"]
    assert {parameter["name"] for parameter in operation["parameters"]} >= {
        "brand",
        "channel",
        "priority",
        "from",
        "to",
    }
    assert "clock" not in {parameter["name"] for parameter in operation["parameters"]}


def test_a_caller_reads_only_the_recovery_of_its_own_brands(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME, Brand(id="globex", name="Globex")])
    claims = {"sub": "analyst", "iss": "https://issuer.example.com/pool", "replyclock_brands": "[globex]"}

    def as_globex_reader(brand_id: str) -> Any:
        event = http_event("api_metrics_recovery.json", query={**AROUND_T0, "brand": brand_id})
        event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": None}}
        return api.send(event)

    assert as_globex_reader("globex").status == 200
    for brand_id in ("acme", "nobody"):  # an unknown brand is forbidden too: existence does not leak
        response = as_globex_reader(brand_id)
        assert response.status == 403, response.body
        assert response.json()["field"] == "brand"
