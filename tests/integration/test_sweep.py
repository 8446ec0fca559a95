"""The sweeper: unanswered waits move to at-risk and breached, once, on the policy's clock."""

from __future__ import annotations

import random
from datetime import UTC, datetime, time, timedelta

import boto3
import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.conversations import OPEN_WAITS_INDEX, index_time
from replyclock.dal.open_waits import OpenWaitEntry, OpenWaitIndex
from replyclock.models.domain import (
    Brand,
    BusinessCalendar,
    Clock,
    OpenInterval,
    SLAPolicy,
    SLATargets,
    WaitStatus,
)
from replyclock.services.measuring import directory_from
from replyclock.services.sweeping import Alert, sweep
from tests.support.builders import T0, brand, customer
from tests.support.expectations import expected_snapshot, expected_waits, stored_snapshot, stored_waits
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(
    id="acme",
    name="Acme",
    sla_policies=[SLAPolicy(targets=SLATargets(normal=3600), at_risk_fraction=0.75)],
)
LONDON = BusinessCalendar(
    timezone="Europe/London",
    weekly_hours={day: [OpenInterval(start=time(9), end=time(17))] for day in range(5)},
)
BUSINESS_ACME = ACME.model_copy(
    update={
        "calendar": LONDON,
        "sla_policies": [SLAPolicy(clock=Clock.BUSINESS, targets=SLATargets(normal=1800))],
    }
)


def run_sweep(pipeline: Pipeline, now: datetime, brands: list[Brand]) -> list[Alert]:
    published: list[Alert] = []
    sweep(
        OpenWaitIndex(pipeline.table_name),
        pipeline.conversations,
        pipeline.posts,
        directory_from(brands),
        published.append,
        now=now,
    )
    pipeline.run()
    return published


def status(pipeline: Pipeline, conversation: str = "c1", customer: str = "alice") -> WaitStatus:
    state = pipeline.conversations.get("x", conversation, "acme", customer)
    assert state is not None
    return state.waits[-1].status


def test_an_unanswered_wait_is_warned_then_breached_on_the_calendar_clock(pipeline: Pipeline) -> None:
    # Given an unanswered mention with a 1-hour target, at risk after 45 minutes
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()

    # When sweeps run before, across the at-risk line and across the due time
    before = run_sweep(pipeline, T0 + timedelta(minutes=44), [ACME])
    at_risk = run_sweep(pipeline, T0 + timedelta(minutes=45), [ACME])
    breached = run_sweep(pipeline, T0 + timedelta(minutes=61), [ACME])

    # Then one warning and one breach, each at its moment
    assert before == []
    assert [alert.status for alert in at_risk] == [WaitStatus.AT_RISK]
    assert [alert.status for alert in breached] == [WaitStatus.BREACHED]
    assert breached[0].waited_seconds == 61 * 60
    assert status(pipeline) is WaitStatus.BREACHED


def test_a_wait_that_jumps_past_its_due_time_is_breached_without_a_warning(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()

    alerts = run_sweep(pipeline, T0 + timedelta(hours=5), [ACME])

    assert [alert.status for alert in alerts] == [WaitStatus.BREACHED]


def test_a_friday_evening_wait_on_the_business_clock_is_due_monday_morning(pipeline: Pipeline) -> None:
    # Given a mention at 17:55 on Friday, 30 business minutes to answer, open 9-17 on weekdays
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=LONDON.zone)
    pipeline.add_brands([BUSINESS_ACME])
    pipeline.write([customer("1", 0, start=friday_evening)])
    pipeline.run()

    def london(day: int, hour: int, minute: int) -> datetime:
        return datetime(2026, 11, day, hour, minute, tzinfo=LONDON.zone)

    # When sweeps run over the weekend and on Monday morning
    saturday = run_sweep(pipeline, london(21, 12, 0), [BUSINESS_ACME])
    monday_early = run_sweep(pipeline, london(23, 9, 23), [BUSINESS_ACME])
    monday_at_risk = run_sweep(pipeline, london(23, 9, 24), [BUSINESS_ACME])
    monday_due = run_sweep(pipeline, london(23, 9, 30), [BUSINESS_ACME])

    # Then nothing happens until Monday, at risk at 09:24, breached at 09:30
    assert saturday == monday_early == []
    assert [alert.status for alert in monday_at_risk] == [WaitStatus.AT_RISK]
    assert [alert.status for alert in monday_due] == [WaitStatus.BREACHED]
    assert monday_due[0].waited_seconds == 30 * 60
    assert monday_due[0].wait.due_at == london(23, 9, 30).astimezone(UTC)


def test_each_customer_waiting_in_one_conversation_is_swept_and_alerted_on_its_own(pipeline: Pipeline) -> None:
    # Given two customers asking acme in one conversation, 20 minutes apart, and acme answering only the first
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), customer("2", 20, "@acme me too", reply_to="1", author="bob")])
    pipeline.write([brand("3", 30, "@alice done", reply_to="1")])
    pipeline.run()

    # When sweeps run across bob's at-risk line (20 + 45 minutes) and his due time (20 + 60 minutes)
    early = run_sweep(pipeline, T0 + timedelta(minutes=64), [ACME])
    at_risk = run_sweep(pipeline, T0 + timedelta(minutes=65), [ACME])
    breached = run_sweep(pipeline, T0 + timedelta(minutes=81), [ACME])

    # Then only bob's wait is warned and breached, each once, and alice's answered wait is untouched
    assert early == []
    assert [(alert.wait.customer, alert.status) for alert in at_risk] == [("bob", WaitStatus.AT_RISK)]
    assert [(alert.wait.customer, alert.status) for alert in breached] == [("bob", WaitStatus.BREACHED)]
    assert breached[0].waited_seconds == 61 * 60
    assert status(pipeline, customer="bob") is WaitStatus.BREACHED
    assert status(pipeline, customer="alice") is WaitStatus.MET


def test_an_open_wait_keeps_its_index_keys_while_swept_and_leaves_the_index_once_answered(pipeline: Pipeline) -> None:
    # Given an unanswered mention (1-hour target, at risk after 45 minutes)
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()
    index = OpenWaitIndex(pipeline.table_name)

    def entries() -> list[tuple[str, str, str, datetime, datetime | None]]:
        return [
            (e.brand_id, e.conversation_id, e.customer, e.open_since, e.next_alert_at) for e in index.all_open_waits()
        ]

    def index_keys() -> list[tuple[str, str]]:
        table = boto3.resource("dynamodb").Table(pipeline.table_name)
        return [(str(item["gsi1pk"]), str(item["gsi1sk"])) for item in table.scan(IndexName=OPEN_WAITS_INDEX)["Items"]]

    # When the sweeper moves it to at risk, then to breached, and the brand finally answers
    seen = [(entries(), index_keys())]
    run_sweep(pipeline, T0 + timedelta(minutes=45), [ACME])
    seen.append((entries(), index_keys()))
    run_sweep(pipeline, T0 + timedelta(minutes=61), [ACME])
    seen.append((entries(), index_keys()))
    pipeline.write([brand("2", 90)])
    pipeline.run()

    # Then its entry names the customer and the next moment to act (none once breached), under keys that
    # never moved (its due time), and it is gone once answered
    assert [found for found, _ in seen] == [
        [("acme", "c1", "alice", T0, T0 + timedelta(minutes=45))],
        [("acme", "c1", "alice", T0, T0 + timedelta(minutes=60))],
        [("acme", "c1", "alice", T0, None)],
    ]
    [[(_, sort_key)], *rest] = [keys for _, keys in seen]
    assert sort_key.startswith(f"{index_time(T0 + timedelta(minutes=60))}#") and sort_key.endswith("#STATE#acme#alice")
    assert all(keys == seen[0][1] for keys in rest)
    assert index.all_open_waits() == [] and index_keys() == []


def test_overlapping_sweeps_notify_once(pipeline: Pipeline) -> None:
    # Given two sweeps that read the open waits at the same moment
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()
    index = OpenWaitIndex(pipeline.table_name)
    seen_by_both = index.all_open_waits()

    class StaleIndex(OpenWaitIndex):
        def all_open_waits(self) -> list[OpenWaitEntry]:
            return seen_by_both

    published: list[Alert] = []
    now = T0 + timedelta(hours=2)

    # When both act on what they read
    for _ in range(2):
        sweep(
            StaleIndex(pipeline.table_name),
            pipeline.conversations,
            pipeline.posts,
            directory_from([ACME]),
            published.append,
            now=now,
        )

    # Then only one of them breaches and notifies
    assert [alert.status for alert in published] == [WaitStatus.BREACHED]


def test_a_late_answer_after_the_breach_keeps_it_breached_and_records_its_latency(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()
    run_sweep(pipeline, T0 + timedelta(hours=2), [ACME])

    # When the brand finally answers after 3 hours
    pipeline.write([brand("2", 180)])
    pipeline.run()

    # Then the wait is closed, breached, with its real latency, counted once in the buckets
    [(key, [wait])] = stored_waits(pipeline.conversations, [("x", "c1")]).items()
    assert key == ("x", "c1", "acme", "alice")
    assert (wait.status, wait.calendar_seconds) == (WaitStatus.BREACHED, 3 * 3600)
    [(_, totals)] = pipeline.buckets.query("acme", "0000", "9999")
    counters = {name: value for name, value in totals.counters.items() if value}
    assert counters == {"waits": 1, "responded": 1, "breached": 1}


def test_alert_message_names_the_post_the_wait_and_the_clock(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0, "@acme my order never arrived")])
    pipeline.run()
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")

    with time_machine.travel(T0 + timedelta(minutes=50), tick=False):
        response = handler(load_event("sweep_schedule.json"), FakeLambdaContext())
        # moto's SQS hides messages sent at a travelled time once the clock is back to now.
        messages = pipeline.alerts()

    assert response["alerts"] == 1
    [message] = messages
    assert message["status"] == "at_risk"
    assert (message["brand"], message["channel"], message["priority"]) == ("acme", "x", "normal")
    assert (message["conversation_id"], message["customer"]) == ("c1", "alice")
    assert message["post_excerpt"] == "@acme my order never arrived"
    assert (message["waited_seconds"], message["target_seconds"], message["clock"]) == (3000, 3600, "calendar")


def test_aggregates_equal_exact_totals_after_sweeps_and_late_answers_in_any_order(pipeline: Pipeline) -> None:
    # Given several conversations, some answered in time, some late, some never
    rng = random.Random(7)
    pipeline.add_brands([ACME])
    questions = [customer(f"q{n}", n * 7, conversation=f"c{n}") for n in range(8)]
    answers = [brand(f"a{n}", n * 7 + rng.choice([10, 50, 120, 400]), conversation=f"c{n}") for n in range(6)]
    events: list[object] = [*questions, *answers, *(T0 + timedelta(minutes=m) for m in (30, 60, 90, 200, 500))]
    rng.shuffle(events)

    # When posts and sweeps happen in a shuffled order
    for event in events:
        if isinstance(event, datetime):
            run_sweep(pipeline, event, [ACME])
        else:
            pipeline.write([event])  # type: ignore[list-item]
            pipeline.run()
    run_sweep(pipeline, T0 + timedelta(days=1), [ACME])

    # Then the buckets are the exact totals of the stored waits
    stored = stored_waits(pipeline.conversations, [("x", f"c{n}") for n in range(8)])
    pure = expected_waits([*questions, *answers], directory_from([ACME]))
    assert set(stored) == set(pure) == {("x", f"c{n}", "acme", "alice") for n in range(8)}
    final_waits = []
    for key, waits in stored.items():
        final_waits.extend(waits)
        if not pure[key][-1].is_open:
            assert waits == pure[key]
        else:
            assert len(waits) == len(pure[key]) and waits[-1].status is WaitStatus.BREACHED
    assert stored_snapshot(pipeline.buckets, ["acme"]) == expected_snapshot(final_waits)
