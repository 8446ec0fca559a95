"""Exposure: the audience of unanswered complaints, through the stream path, the sweeper and the summary."""

from __future__ import annotations

from datetime import timedelta

import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.exposure import ExposureStore
from replyclock.dal.open_waits import OpenWaitIndex
from replyclock.models.domain import Brand, Engagement, SLAPolicy, SLATargets
from replyclock.services.measuring import directory_from
from replyclock.services.sweeping import Alert, sweep
from tests.support.api import ApiClient
from tests.support.builders import T0, brand, customer
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme", sla_policies=[SLAPolicy(targets=SLATargets(normal=3600), at_risk_fraction=0.75)])
AROUND_T0 = {"brand": "acme", "from": (T0 - timedelta(hours=1)).isoformat(), "to": (T0 + timedelta(days=1)).isoformat()}
# Three customers waiting: reach 50, 5,000 (and 120 reposts of the complaint) and 500; a fourth, reach unknown.
WAITING = [
    customer("1", 0, "@acme help", conversation="c1", author="small", reach=50),
    customer("2", 1, "@acme #fail", conversation="c2", author="famous", reach=5_000).model_copy(
        update={"engagement": Engagement(reposts=120)}
    ),
    customer("3", 2, "@acme hello?", conversation="c3", author="middling", reach=500),
    customer("4", 3, "@acme anyone", conversation="c4", author="unknown"),
]


def measured(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write(reversed(WAITING))
    pipeline.run()
    pipeline.write(WAITING)  # redelivered: nothing changes
    pipeline.run()


def test_at_risk_alerts_come_most_exposed_first(pipeline: Pipeline) -> None:
    measured(pipeline)
    published: list[Alert] = []

    sweep(
        OpenWaitIndex(pipeline.table_name),
        pipeline.conversations,
        pipeline.posts,
        directory_from([ACME]),
        published.append,
        now=T0 + timedelta(minutes=50),
    )

    assert [(alert.wait.customer, alert.wait.exposure) for alert in published] == [
        ("famous", 5_120),
        ("middling", 500),
        ("small", 50),
        ("unknown", None),
    ]
    assert {alert.status.value for alert in published} == {"at_risk"}


def test_the_sweeper_counts_open_exposure_and_the_summary_reports_it(api: ApiClient, pipeline: Pipeline) -> None:
    # Given four open waits, swept by the handler
    measured(pipeline)
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    # Then the brand's open exposure is the sum of its open waits' (an unknown reach adds nothing)
    counted = ExposureStore(pipeline.table_name).get("acme")
    assert counted is not None
    assert (counted.open_waits, counted.open_exposure) == (4, 50 + 5_120 + 500)
    body = api.call("api_metrics_summary.json", query={**AROUND_T0, "clock": "calendar"}).json()
    assert body["exposure"]["open_waits"] == 4 and body["exposure"]["open_exposure"] == 5_670
    by_channel = api.call("api_metrics_summary.json", query={**AROUND_T0, "channel": "x"}).json()
    assert by_channel["exposure"]["open_exposure"] == 5_670

    # When the famous customer is answered and the sweeper runs again
    pipeline.write([brand("5", 20, "@famous sorted", reply_to="2", conversation="c2")])
    pipeline.run()
    with time_machine.travel(T0 + timedelta(minutes=21), tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    # Then their audience leaves the count
    after = api.call("api_metrics_summary.json", query={**AROUND_T0, "clock": "calendar"}).json()
    assert (after["exposure"]["open_waits"], after["exposure"]["open_exposure"]) == (3, 550)


def test_a_brand_whose_waits_are_all_answered_is_counted_at_zero(pipeline: Pipeline) -> None:
    measured(pipeline)
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())
    pipeline.write([brand("9", 30, "We're back up, sorry everyone", conversation=f"c{n}") for n in range(1, 5)])
    pipeline.run()

    with time_machine.travel(T0 + timedelta(minutes=31), tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    counted = ExposureStore(pipeline.table_name).get("acme")
    assert counted is not None and (counted.open_waits, counted.open_exposure, counted.channels) == (0, 0, {})


def test_summary_exposure_is_null_for_a_priority_zero_for_an_unknown_channel_and_hostile_input_is_400(
    api: ApiClient, pipeline: Pipeline
) -> None:
    measured(pipeline)
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(T0 + timedelta(minutes=10), tick=False):
        handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    by_priority = api.call("api_metrics_summary.json", query={**AROUND_T0, "priority": "normal"})
    other_channel = api.call("api_metrics_summary.json", query={**AROUND_T0, "channel": "mastodon"})
    hostile = api.call("api_metrics_summary.json", query={**AROUND_T0, "channel": "x' OR 1=1 --"})
    huge = api.call("api_metrics_summary.json", query={**AROUND_T0, "channel": "x" * 10_000})

    assert by_priority.status == 200 and by_priority.json()["exposure"] is None
    assert other_channel.status == 200
    assert (other_channel.json()["exposure"]["open_waits"], other_channel.json()["exposure"]["open_exposure"]) == (0, 0)
    assert hostile.status == 400 and hostile.json()["field"] == "channel"
    assert huge.status == 400 and huge.json()["field"] == "channel"


def test_summary_exposure_is_null_before_the_first_sweep(api: ApiClient, pipeline: Pipeline) -> None:
    measured(pipeline)

    body = api.call("api_metrics_summary.json", query=AROUND_T0).json()

    assert body["exposure"] is None
