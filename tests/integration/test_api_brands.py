"""GET/PUT /brands/{id} and /brands/{id}/sla-policy: through the resolver with events/ files."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from replyclock.dal.brands import BrandStore
from replyclock.dal.table import Throttled
from replyclock.models.domain import Brand, WaitStatus
from tests.support.api import ApiClient, http_event
from tests.support.builders import T0, brand, customer
from tests.support.expectations import stored_waits
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline, import_measure_module_cache_reset


def event_body(name: str) -> dict[str, Any]:
    return json.loads(load_event(name)["body"])  # type: ignore[no-any-return]


def test_put_event_creates_the_brand_then_replaces_it(api: ApiClient, pipeline: Pipeline) -> None:
    created = api.call("api_brand_put.json")
    replaced = api.call(
        "api_brand_put.json",
        body={**event_body("api_brand_put.json"), "name": "Acme Inc"},
        headers={"if-match": created.headers["ETag"]},
    )

    assert created.status == 201, created.body
    assert replaced.status == 200, replaced.body
    stored = pipeline.brands.get("acme")
    assert stored is not None and stored.name == "Acme Inc"
    assert stored.handles["x"] == ["acmehelp"] and stored.calendar.timezone == "Europe/Paris"
    assert created.json()["sla_policy"]["version"] == 1


def test_get_event_returns_the_configuration(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")

    response = api.call("api_brand_get.json")

    assert response.status == 200
    body = response.json()
    assert (body["id"], body["name"], body["auto_reply_patterns"]) == (
        "acme",
        "Acme Corp",
        ["^Thanks for reaching out"],
    )
    assert body["priority_rules"], "the default priority rules apply when none are given"


def test_list_event_names_every_brand(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([Brand(id="zeta", name="Zeta"), Brand(id="acme", name="Acme")])

    response = api.call("api_brands.json")

    assert response.json() == {"items": [{"id": "acme", "name": "Acme"}, {"id": "zeta", "name": "Zeta"}]}


def test_unknown_brand_is_404(api: ApiClient, pipeline: Pipeline) -> None:
    for name in ("api_brand_get.json", "api_sla_policy_get.json", "api_sla_policy_put.json"):
        response = api.call(name)

        assert response.status == 404, name
        assert response.json() == {"message": "brand 'acme' is not configured", "field": "brand_id"}


def test_replacing_a_brand_keeps_its_policy_history(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")
    api.call("api_sla_policy_put.json")

    replaced = api.call("api_brand_put.json", headers={"if-match": api.call("api_brand_get.json").headers["ETag"]})

    assert replaced.status == 200, replaced.body

    stored = pipeline.brands.get("acme")
    assert stored is not None and [policy.version for policy in stored.sla_policies] == [1, 2]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": ""}, "name"),
        ({"calendar": {"timezone": "Mars/Olympus"}}, "calendar.timezone"),
        ({"handles": {"Not A Channel": ["x"]}}, "handles.Not A Channel.[key]"),
        ({"auto_reply_patterns": ["(unclosed"]}, "auto_reply_patterns.0"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_invalid_brand_bodies_are_422_naming_the_field(
    api: ApiClient, pipeline: Pipeline, change: dict[str, Any], field: str
) -> None:
    response = api.call("api_brand_put.json", body={**event_body("api_brand_put.json"), **change})

    assert response.status == 422, response.body
    assert response.json()["field"] == field
    assert pipeline.brands.get("acme") is None, "nothing is half written"


def test_a_handle_of_another_brand_is_422(api: ApiClient, pipeline: Pipeline) -> None:
    pipeline.add_brands([Brand(id="globex", name="Globex", handles={"x": ["acmehelp"]})])

    response = api.call("api_brand_put.json")

    assert response.status == 422
    assert response.json()["field"] == "handles.x" and "globex" in response.json()["message"]


def test_malformed_json_is_400_and_a_missing_body_422(api: ApiClient, pipeline: Pipeline) -> None:
    malformed = api.call("api_brand_put.json", body='{"name": ')
    missing = api.call("api_brand_put.json", body=None)

    assert (malformed.status, malformed.json()["field"]) == (400, "body")
    assert missing.status == 422


def test_a_body_over_64_kib_is_413(api: ApiClient, pipeline: Pipeline) -> None:
    body = {**event_body("api_brand_put.json"), "auto_reply_patterns": ["x" * 400] * 200}

    response = api.call("api_brand_put.json", body=body)

    assert response.status == 413
    assert response.json()["field"] == "body"


def test_a_body_that_is_not_json_is_415(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.send(http_event("api_brand_put.json", headers={"content-type": "text/plain"}))

    assert response.status == 415


@pytest.mark.parametrize(
    "content_type",
    [
        "multipart/form-data",
        "multipart/form-data; boundary=x",
        "application/x-www-form-urlencoded",
        "application/jsonx",
    ],
)
@pytest.mark.parametrize("event", ["api_brand_put.json", "api_sla_policy_put.json"])
def test_form_and_multipart_bodies_are_415_too(
    api: ApiClient, pipeline: Pipeline, event: str, content_type: str
) -> None:
    # Powertools parses form bodies itself, and a multipart one without a boundary was a 500.
    pipeline.add_brands([Brand(id="acme", name="Acme")])

    response = api.send(http_event(event, headers={"content-type": content_type}))

    assert response.status == 415, response.body
    assert response.json()["field"] == "body"


def test_json_with_a_charset_parameter_is_json(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.send(http_event("api_brand_put.json", headers={"content-type": "application/json; charset=utf-8"}))

    assert response.status == 201, response.body


@pytest.mark.parametrize("hours", [{"start": "09:00", "end": "17:00+02:00"}, {"start": "09:00Z", "end": "17:00Z"}])
def test_open_hours_with_a_utc_offset_are_422(api: ApiClient, pipeline: Pipeline, hours: dict[str, str]) -> None:
    # Open hours are wall-clock times in the calendar's timezone; a naive start and an aware end was a 500.
    calendar = {"timezone": "Europe/Paris", "weekly_hours": {"0": [hours]}}

    response = api.call("api_brand_put.json", body={**event_body("api_brand_put.json"), "calendar": calendar})

    assert response.status == 422, response.body
    assert response.json()["field"].startswith("calendar.weekly_hours.0.0.")
    assert pipeline.brands.get("acme") is None


def test_a_throttled_table_is_503_with_retry_after(
    api: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    def throttled(store: BrandStore) -> list[Brand]:
        raise Throttled("ThrottlingException")

    monkeypatch.setattr(BrandStore, "all", throttled)

    response = api.call("api_brands.json")

    assert (response.status, response.headers["Retry-After"]) == (503, "1")
    assert set(response.json()) == {"message", "field"}


def test_a_body_that_is_not_utf8_is_400(api: ApiClient, pipeline: Pipeline) -> None:
    event = http_event("api_brand_put.json", body="/w==")
    event["isBase64Encoded"] = True

    response = api.send(event)

    assert response.status == 400 and response.json()["field"] == "body"


def test_malformed_brand_id_in_the_path_is_400(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_brand_put.json", path="/brands/-bad-")

    assert response.status == 400 and response.json()["field"] == "brand_id"


def test_put_sla_policy_event_appends_a_version_effective_now(api: ApiClient, pipeline: Pipeline) -> None:
    api.call("api_brand_put.json")

    response = api.call("api_sla_policy_put.json")

    assert response.status == 200, response.body
    body = response.json()
    assert body["current"]["version"] == 2
    assert body["current"]["effective_from"] == api.now.isoformat().replace("+00:00", "Z")
    assert body["current"]["targets"]["urgent"] == 600
    assert [policy["version"] for policy in body["history"]] == [1, 2]
    assert api.call("api_sla_policy_get.json").json() == body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"targets": {"urgent": 0}}, "targets.urgent"),
        ({"at_risk_fraction": 1.5}, "at_risk_fraction"),
        ({"clock": "lunar"}, "clock"),
        ({"version": 7}, "version"),
    ],
)
def test_invalid_policies_are_422(api: ApiClient, pipeline: Pipeline, change: dict[str, Any], field: str) -> None:
    api.call("api_brand_put.json")

    response = api.call("api_sla_policy_put.json", body={**event_body("api_sla_policy_put.json"), **change})

    assert response.status == 422, response.body
    assert response.json()["field"] == field


def test_a_brand_changed_between_read_and_write_is_412_and_the_other_change_survives(
    api: ApiClient, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given another writer renames the brand between our If-Match check and our write
    etag = api.call("api_brand_put.json").headers["ETag"]
    original = BrandStore.put_if_unchanged

    def racing_put(store: BrandStore, brand: Brand, previous_config: str | None) -> None:
        current = pipeline.brands.get("acme")
        assert current is not None
        pipeline.brands.put(current.model_copy(update={"name": "Renamed meanwhile"}))
        original(store, brand, previous_config)

    monkeypatch.setattr(BrandStore, "put_if_unchanged", racing_put)

    # When our change is written
    response = api.call("api_brand_put.json", body={"name": "Ours"}, headers={"if-match": etag})

    # Then we are told it lost, and the other change is kept
    assert response.status == 412 and response.json()["field"] == "If-Match"
    stored = pipeline.brands.get("acme")
    assert stored is not None and stored.name == "Renamed meanwhile"


def test_a_policy_change_affects_only_waits_that_start_after_it(api: ApiClient, pipeline: Pipeline) -> None:
    # Given acme on the default policy (normal priority: 4 hours) and a conversation answered in 2 hours
    api.now = T0 - timedelta(days=1)
    assert api.call("api_brand_put.json", body={"name": "Acme"}).status == 201
    pipeline.write([customer("1", 0, conversation="early"), brand("2", 120, reply_to="1", conversation="early")])
    pipeline.run()

    # When the policy tightens to 1 hour a day later
    api.now = T0 + timedelta(days=1)
    changed = api.call("api_sla_policy_put.json", body={"targets": {"normal": 3600}})
    assert changed.status == 200, changed.body
    import_measure_module_cache_reset()

    # And, after the change, the early conversation goes on and a new one starts, both answered in 2 hours
    later = 2 * 24 * 60
    pipeline.write(
        [
            customer("3", later, "still broken", reply_to="2", conversation="early"),
            brand("4", later + 120, reply_to="3", conversation="early"),
            customer("5", later, conversation="late", author="bob"),
            brand("6", later + 120, reply_to="5", conversation="late"),
        ]
    )
    pipeline.run()

    # Then the early wait keeps version 1 (met), while the waits that started after the change use version 2
    stored = stored_waits(pipeline.conversations, [("x", "early"), ("x", "late")])
    assert set(stored) == {("x", "early", "acme", "alice"), ("x", "late", "acme", "bob")}
    early = stored[("x", "early", "acme", "alice")]
    late = stored[("x", "late", "acme", "bob")]
    assert [(w.policy_version, w.status) for w in early] == [(1, WaitStatus.MET), (2, WaitStatus.BREACHED)]
    assert [(w.policy_version, w.status) for w in late] == [(2, WaitStatus.BREACHED)]

    # And the summary counts them so
    api.now = T0 + timedelta(days=3)
    summary = api.call("api_metrics_summary.json", query={"brand": "acme"}).json()
    assert summary["sla"] == {"met": 1, "breached": 1, "pending": 0, "at_risk": 0, "compliance": 0.5}
    assert summary["next_sla"]["breached"] == 1
