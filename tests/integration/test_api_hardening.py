"""Issue 14 part 3, API hardening: each finding of the hostile-input review, answered with one clear 4xx.

Findings (128 hostile requests, 40 concurrent PUTs) and what answers them here: huge numbers and deep
nesting (400, not 500); policy history and client-sent sizes (separate items, caps: 422); ETag and
If-Match (412/428); per-brand authorisation (403/404, filtered lists); ReDoS patterns (RE2: linear);
media types, control characters, inverted targets.
"""

from __future__ import annotations

import copy
import json
import time
from datetime import timedelta
from typing import Any

import pytest

from replyclock.dal.brands import brand_key
from replyclock.dal.sources import SourceStore
from replyclock.dal.table import get_table
from replyclock.models.domain import Brand
from replyclock.models.sources import Source, SourceKind
from tests.support.api import ApiClient, ApiResponse, http_event
from tests.support.builders import T0, brand, customer
from tests.support.pipeline import Pipeline, import_measure_module_cache_reset


def assert_error(response: ApiResponse, status: int, field: str | None = None) -> dict[str, Any]:
    assert response.status == status, response.body
    body: dict[str, Any] = response.json()
    assert set(body) == {"message", "field"} and "Traceback" not in response.body
    if field is not None:
        assert body["field"] == field, body
    return body


def brand_etag(api: ApiClient) -> str:
    return str(api.call("api_brand_get.json").headers["ETag"])


def policy_etag(api: ApiClient) -> str:
    return str(api.call("api_sla_policy_get.json").headers["ETag"])


# --- 500 on a 5,000-digit integer and on deeply nested JSON -------------------------------------


@pytest.mark.parametrize("digits", ["9" * 5000, "-" + "9" * 5000, "9" * 41])
def test_a_number_with_thousands_of_digits_is_400_not_500(api: ApiClient, pipeline: Pipeline, digits: str) -> None:
    body = '{"name": "Acme", "priority_rules": [{"priority": "high", "min_reach": ' + digits + "}]}"

    assert_error(api.send(http_event("api_brand_put.json", body=body)), 400, "body")
    assert pipeline.brands.get("acme") is None


@pytest.mark.parametrize("opening", ["[", '{"a":'])
def test_json_nested_thousands_deep_is_400_not_500(api: ApiClient, pipeline: Pipeline, opening: str) -> None:
    depth = 60_000 // (len(opening) + 1)
    closing = "]" if opening == "[" else "}"
    body = opening * depth + "1" + closing * depth

    assert_error(api.send(http_event("api_brand_put.json", body=body)), 400, "body")
    assert_error(api.send(http_event("api_sla_policy_put.json", body=body)), 400, "body")


def test_brackets_inside_strings_are_no_nesting(api: ApiClient, pipeline: Pipeline) -> None:
    body = {"name": "[[[[{{{{" * 10, "auto_reply_patterns": ["\\[" * 40]}

    assert api.call("api_brand_put.json", body=body).status == 201


def test_reasonable_numbers_still_parse(api: ApiClient, pipeline: Pipeline) -> None:
    body = {"name": "Acme", "priority_rules": [{"priority": "high", "min_reach": 10**30}]}

    assert api.call("api_brand_put.json", body=body).status == 201


# --- policy history grows in one item; sizes a client sends ---------------------------------------


def largest_policy() -> dict[str, Any]:
    """The largest policy a client may send: every channel overridden."""
    targets = {"urgent": 900, "high": 3600, "normal": 14400, "low": 86400}
    return {"targets": targets, "channel_targets": {f"channel-{n:02d}": targets for n in range(16)}}


def test_policy_versions_are_items_of_their_own_so_history_never_breaks_a_brand(
    api: ApiClient, pipeline: Pipeline
) -> None:
    # Given a brand, and its document's size
    api.call("api_brand_put.json")
    table = get_table(pipeline.table_name)
    size_before = len(table.get_item(Key=brand_key("acme"))["Item"]["config"])

    # When 30 of the largest policies are put, one after the other (the 12th used to fail with a 500)
    for _ in range(30):
        response = api.call("api_sla_policy_put.json", body=largest_policy(), headers={"if-match": policy_etag(api)})
        assert response.status == 200, response.body
        api.now += timedelta(minutes=1)

    # Then every version is kept, and the brand's own item has not grown
    history = api.call("api_sla_policy_get.json").json()["history"]
    assert [policy["version"] for policy in history] == list(range(1, 32))
    assert len(table.get_item(Key=brand_key("acme"))["Item"]["config"]) == size_before
    stored = pipeline.brands.get("acme")
    assert stored is not None and stored.current_policy.version == 31
    assert [brand.id for brand in pipeline.brands.all()] == ["acme"]


def test_a_brand_stored_with_its_policies_inside_keeps_them_and_moves_them_out_on_write(
    api: ApiClient, pipeline: Pipeline
) -> None:
    # Given a brand item as written before policies moved out: its history inside the document
    legacy = Brand.model_validate(
        {
            "id": "acme",
            "name": "Acme",
            "sla_policies": [
                {"version": 1},
                {"version": 2, "effective_from": "2026-01-01T00:00:00Z", "targets": {"urgent": 60}},
            ],
        }
    )
    table = get_table(pipeline.table_name)
    table.put_item(Item={**brand_key("acme"), "item_type": "brand", "config": legacy.model_dump_json()})

    # When a new version is put, then the brand replaced
    assert api.call("api_sla_policy_get.json").headers["ETag"] == '"policy-2"'
    assert api.call("api_sla_policy_put.json", headers={"if-match": '"policy-2"'}).status == 200
    assert api.call("api_brand_put.json", headers={"if-match": brand_etag(api)}).status == 200

    # Then all three versions are there, and the document no longer carries them
    assert [policy.version for policy in pipeline.brands.all()[0].sla_policies] == [1, 2, 3]
    assert "sla_policies" not in json.loads(table.get_item(Key=brand_key("acme"))["Item"]["config"])


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Acme", "handles": {"x": [f"h{n}" for n in range(6000)]}}, None),
        ({"name": "Acme", "handles": {f"c{n}": ["h"] for n in range(17)}}, "handles"),
        ({"name": "Acme", "auto_reply_patterns": ["thanks"] * 51}, "auto_reply_patterns"),
        ({"name": "Acme", "auto_reply_patterns": ["a" * 501]}, "auto_reply_patterns.0"),
        ({"name": "Acme", "priority_rules": [{"priority": "high", "keywords": ["k"] * 101}]}, None),
        ({"name": "Acme", "priority_rules": [{"priority": "high"}] * 21}, "priority_rules"),
        ({"name": "Acme", "calendar": {"holidays": ["2026-01-01"] * 401}}, None),
    ],
)
def test_oversized_brand_parts_are_422(
    api: ApiClient, pipeline: Pipeline, body: dict[str, Any], field: str | None
) -> None:
    assert_error(api.call("api_brand_put.json", body=body), 422, field)


def test_a_thousand_channel_targets_are_422(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")
    body = {"channel_targets": {f"c{n}": {} for n in range(1000)}}

    assert_error(api.call("api_sla_policy_put.json", body=body), 422, "channel_targets")


# --- ETag and If-Match ---------------------------------------------------------------------------


def test_reads_carry_an_etag_that_changes_with_the_resource(api: ApiClient, pipeline: Pipeline) -> None:
    created = api.call("api_brand_put.json")
    etag = brand_etag(api)
    assert created.headers["ETag"] == etag and etag.startswith('"')
    assert policy_etag(api) == '"policy-1"'

    api.call("api_sla_policy_put.json")

    assert brand_etag(api) != etag, "the policy in force is part of the brand's representation"
    assert policy_etag(api) == '"policy-2"'


def test_a_bogus_if_match_is_412_and_changes_nothing(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")

    brand_put = api.call("api_brand_put.json", body={"name": "Other"}, headers={"if-match": '"bogus"'})
    policy_put = api.call("api_sla_policy_put.json", headers={"if-match": '"bogus"'})

    assert_error(brand_put, 412, "If-Match")
    assert_error(policy_put, 412, "If-Match")
    stored = pipeline.brands.get("acme")
    assert stored is not None and stored.name == "Acme Corp" and stored.current_policy.version == 1


def test_an_update_without_if_match_is_428(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")
    policy_event = http_event("api_sla_policy_put.json")
    del policy_event["headers"]["if-match"]

    assert_error(api.call("api_brand_put.json", body={"name": "Other"}), 428, "If-Match")
    assert_error(api.send(policy_event), 428, "If-Match")


def test_weak_tags_never_match_and_star_or_a_list_may(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")
    etag = brand_etag(api)

    assert_error(api.call("api_brand_put.json", headers={"if-match": f"W/{etag}"}), 412)
    assert api.call("api_brand_put.json", headers={"if-match": f'"other", {etag}'}).status == 200
    assert api.call("api_brand_put.json", headers={"if-match": "*"}).status == 200


def test_creating_needs_no_etag_and_if_none_match_star_refuses_an_existing_brand(
    api: ApiClient, pipeline: Pipeline
) -> None:
    assert api.call("api_brand_put.json", headers={"if-none-match": "*"}).status == 201

    assert_error(api.call("api_brand_put.json", headers={"if-none-match": "*"}), 412, "If-None-Match")
    assert_error(api.call("api_brand_get.json", path="/brands/nobody"), 404)
    created = api.call("api_brand_put.json", path="/brands/nobody", headers={"if-match": '"x"'})
    assert_error(created, 412, "If-Match")


@pytest.mark.parametrize("route", ["api_brand_put.json", "api_sla_policy_put.json"])
def test_of_twenty_puts_from_one_read_exactly_one_succeeds(api: ApiClient, pipeline: Pipeline, route: str) -> None:
    # Given twenty editors who all read the same version (the finding: 6 of 20 were told they succeeded)
    api.call("api_brand_put.json")
    etag = brand_etag(api) if route == "api_brand_put.json" else policy_etag(api)

    # When each writes its change with the ETag it read
    statuses = []
    for n in range(20):
        body = {"name": f"Editor {n}"} if route == "api_brand_put.json" else {"targets": {"urgent": 60 + n}}
        statuses.append(api.call(route, body=body, headers={"if-match": etag}).status)

    # Then one succeeds and nineteen are told their change was not applied; the winner's change is kept
    assert statuses == [200] + [412] * 19
    stored = pipeline.brands.get("acme")
    assert stored is not None
    assert stored.name == "Editor 0" if route == "api_brand_put.json" else stored.current_policy.targets.urgent == 60


def test_a_policy_version_taken_between_read_and_write_is_412(
    api: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another writer adds version 2 after our If-Match check
    api.call("api_brand_put.json")
    from replyclock.dal.brands import BrandStore

    original = BrandStore.add_policy

    def racing(store: BrandStore, brand_id: str, policy: Any) -> bool:
        original(store, brand_id, policy.model_copy(update={"targets": policy.targets.model_copy()}))
        return original(store, brand_id, policy)

    monkeypatch.setattr(BrandStore, "add_policy", racing)

    assert_error(api.call("api_sla_policy_put.json"), 412, "If-Match")


# --- per-brand authorisation ---------------------------------------------------------------------


def as_jwt(event: dict[str, Any], *, brands: Any = None, scopes: list[str] | None = None) -> dict[str, Any]:
    """The event as API Gateway's JWT authorizer passes it (claims are strings; arrays as "[a b]")."""
    event = copy.deepcopy(event)
    claims: dict[str, Any] = {"sub": "analyst", "iss": "https://issuer.example.com/pool"}
    if brands is not None:
        claims["replyclock_brands"] = brands
    event["requestContext"]["authorizer"] = {"jwt": {"claims": claims, "scopes": scopes}}
    return event


@pytest.fixture
def two_brands(api: ApiClient, pipeline: Pipeline) -> ApiClient:
    pipeline.add_brands(
        [
            Brand(id="acme", name="Acme", handles={"x": ["acme"]}),
            Brand(id="globex", name="Globex", handles={"x": ["globex"]}),
        ]
    )
    pipeline.write(
        [
            customer("1", 0, "@acme help", conversation="c1"),
            brand("2", 20, reply_to="1", conversation="c1"),
            customer("3", 0, "@globex my secret complaint", conversation="c3", author="bob"),
            brand("4", 20, "@bob on it", brand_id="globex", reply_to="3", conversation="c3"),
        ]
    )
    pipeline.run()
    store = SourceStore(pipeline.table_name)
    for brand_id in ("acme", "globex"):
        store.put(
            Source(
                id=f"{brand_id}-x",
                kind=SourceKind.X,
                brand_id=brand_id,
                account_id="1",
                account_handle=brand_id,
                credentials_name="replyclock/x",
            )
        )
    return api


BRAND_READS = [
    ("api_metrics_summary.json", {"query": {"brand": "globex"}}),
    ("api_metrics_timeseries.json", {"query": {"brand": "globex"}}),
    ("api_metrics_distribution.json", {"query": {"brand": "globex"}}),
    ("api_conversations.json", {"query": {"brand": "globex"}}),
    ("api_brand_get.json", {"path": "/brands/globex"}),
    ("api_sla_policy_get.json", {"path": "/brands/globex/sla-policy"}),
]


@pytest.mark.parametrize(("name", "changes"), BRAND_READS)
def test_a_token_reads_only_the_brands_its_claim_names(
    two_brands: ApiClient, name: str, changes: dict[str, Any]
) -> None:
    for claim in ("acme", "[acme]", ["acme"], "acme other"):
        refused = two_brands.send(as_jwt(http_event(name, **changes), brands=claim))
        assert_error(refused, 403)
    acme = {
        key: ({"brand": "acme"} if key == "query" else value.replace("globex", "acme"))
        for key, value in changes.items()
    }
    assert two_brands.send(as_jwt(http_event(name, **acme), brands="[acme other]")).status == 200
    assert two_brands.send(as_jwt(http_event(name, **changes), scopes=["replyclock/admin"])).status == 200


def test_a_token_without_the_claim_reads_no_brand(two_brands: ApiClient) -> None:
    assert_error(two_brands.send(as_jwt(http_event("api_metrics_summary.json", query={"brand": "acme"}))), 403)
    assert two_brands.send(as_jwt(http_event("api_brands.json"))).json() == {"items": []}


def test_lists_show_only_the_brands_a_token_may_read(two_brands: ApiClient) -> None:
    brands = two_brands.send(as_jwt(http_event("api_brands.json"), brands="acme")).json()
    sources = two_brands.send(as_jwt(http_event("api_sources.json"), brands="acme")).json()
    health = two_brands.send(as_jwt(http_event("api_health.json"), brands="acme")).json()

    assert [item["id"] for item in brands["items"]] == ["acme"]
    assert [item["id"] for item in sources["items"]] == ["acme-x"]
    assert [item["id"] for item in health["sources"]] == ["acme-x"]
    assert_error(
        two_brands.send(as_jwt(http_event("api_source_get.json", path="/sources/globex-x"), brands="acme")), 404
    )
    admin = two_brands.send(as_jwt(http_event("api_brands.json"), scopes=["replyclock/admin"])).json()
    assert [item["id"] for item in admin["items"]] == ["acme", "globex"]


def test_another_brands_conversation_and_its_post_text_stay_hidden(two_brands: ApiClient) -> None:
    other = http_event("api_conversation_detail.json", path="/conversations/x/c3")
    own = http_event("api_conversation_detail.json", path="/conversations/x/c1")

    hidden = two_brands.send(as_jwt(other, brands="acme"))
    shown = two_brands.send(as_jwt(own, brands="acme"))

    assert_error(hidden, 404)
    assert "secret complaint" not in hidden.body
    assert shown.status == 200 and {lane["brand_id"] for lane in shown.json()["brands"]} == {"acme"}
    assert two_brands.send(as_jwt(other, scopes=["replyclock/admin"])).status == 200


@pytest.mark.parametrize(
    "name", ["api_brand_put.json", "api_sla_policy_put.json", "api_source_delete.json", "api_post_delete.json"]
)
def test_writes_need_the_admin_scope_even_for_an_allowed_brand(two_brands: ApiClient, name: str) -> None:
    assert_error(two_brands.send(as_jwt(http_event(name), brands="acme globex")), 403)


def test_iam_callers_are_authorised_by_their_iam_policy_and_reach_every_brand(two_brands: ApiClient) -> None:
    # The events/ files carry an IAM identity: API Gateway checked execute-api:Invoke for the route already.
    assert two_brands.call("api_metrics_summary.json", query={"brand": "globex"}).status == 200
    assert [item["id"] for item in two_brands.call("api_brands.json").json()["items"]] == ["acme", "globex"]


# --- ReDoS: an auto-reply pattern with nested quantifiers -----------------------------------------


def test_a_catastrophic_backtracking_pattern_measures_in_linear_time(api: ApiClient, pipeline: Pipeline) -> None:
    # Given a brand whose auto-reply pattern makes a backtracking engine take 23 s on 26 'A's (28: past 60 s)
    api.now = T0 - timedelta(days=1)
    response = api.call("api_brand_put.json", body={"name": "Acme", "auto_reply_patterns": ["(a+)+$"]})
    assert response.status == 201, response.body
    import_measure_module_cache_reset()

    # When the brand posts 30 'A's and a '!' in a conversation (a backtracking engine: ~90 s)
    pipeline.write(
        [customer("1", 0, conversation="c1"), brand("2", 5, "A" * 30 + "!", reply_to="1", conversation="c1")]
    )
    started = time.monotonic()
    pipeline.run()

    # Then it is measured at once (and, not matching, answers the customer)
    assert time.monotonic() - started < 10
    detail = api.call("api_conversation_detail.json", path="/conversations/x/c1").json()
    assert detail["brands"][0]["waits"][0]["end_post_id"] == "2"


@pytest.mark.parametrize("pattern", [r"(a)\1", r"(?=thanks)", r"(?<!no )thanks", "a{1000}{1000}"])
def test_patterns_re2_cannot_run_in_linear_time_are_422(api: ApiClient, pipeline: Pipeline, pattern: str) -> None:
    body = assert_error(
        api.call("api_brand_put.json", body={"name": "Acme", "auto_reply_patterns": [pattern]}),
        422,
        "auto_reply_patterns.0",
    )
    assert "RE2" in body["message"]


# --- media types, control characters, inverted targets --------------------------------------------


@pytest.mark.parametrize("media_type", ["APPLICATION/JSON", "Application/Json; charset=UTF-8", " application/json "])
def test_media_types_are_case_insensitive(api: ApiClient, pipeline: Pipeline, media_type: str) -> None:
    response = api.send(http_event("api_brand_put.json", body={"name": "Acme"}, headers={"content-type": media_type}))

    assert response.status == 201, response.body


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "Acme\u202eCorp"}, "name"),
        ({"name": "Acme\x00"}, "name"),
        ({"name": "Acme\x1b[31m"}, "name"),
        ({"name": "Ac\u200bme"}, "name"),
        ({"name": "Acme", "handles": {"x": ["acme\u202e"]}}, "handles.x.0"),
        ({"name": "Acme", "handles": {"x": ["acme\n"]}}, "handles.x.0"),
        ({"name": "Acme", "priority_rules": [{"priority": "high", "keywords": ["down\u202e"]}]}, None),
    ],
)
def test_control_and_bidi_characters_are_refused_in_names_and_handles(
    api: ApiClient, pipeline: Pipeline, body: dict[str, Any], field: str | None
) -> None:
    assert_error(api.call("api_brand_put.json", body=body), 422, field)
    assert pipeline.brands.get("acme") is None


def test_names_in_any_script_are_still_welcome(api: ApiClient, pipeline: Pipeline) -> None:
    assert api.call("api_brand_put.json", body={"name": "Café ☕ 東京 مرحبا"}).status == 201


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"targets": {"urgent": 86_400, "low": 1}}, None),
        ({"targets": {"urgent": 900, "high": 600}}, None),
        ({"channel_targets": {"x": {"normal": 100, "low": 50}}}, None),
    ],
)
def test_targets_that_decrease_with_priority_are_422(
    api: ApiClient, pipeline: Pipeline, body: dict[str, Any], field: str | None
) -> None:
    api.call("api_brand_put.json")

    message = assert_error(api.call("api_sla_policy_put.json", body=body), 422, field)["message"]

    assert "urgent <= high <= normal <= low" in message


def test_equal_targets_across_priorities_are_fine(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")
    body = {"targets": {"urgent": 3600, "high": 3600, "normal": 3600, "low": 3600}}

    assert api.call("api_sla_policy_put.json", body=body).status == 200
