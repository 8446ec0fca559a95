"""Alerts are delivered at least once through the outbox, each with a stable id receivers dedupe on."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
import time_machine
from botocore.exceptions import ClientError

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal import notifications
from replyclock.dal.alert_outbox import AlertOutbox
from replyclock.dal.open_waits import OpenWaitEntry, OpenWaitIndex
from replyclock.models.domain import Brand, SLAPolicy, SLATargets, WaitStatus
from replyclock.services.measuring import directory_from
from replyclock.services.sweeping import Alert, sweep
from tests.support.builders import T0, brand, customer
from tests.support.faults import FaultInjector, Faults
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(
    id="acme",
    name="Acme",
    sla_policies=[SLAPolicy(targets=SLATargets(normal=3600), at_risk_fraction=0.75)],
)


class FailingPublishes:
    """Fails the first `count` SNS Publish calls from inside botocore, as an SNS outage would."""

    def __init__(self, count: int) -> None:
        self.count = count
        self.failed = 0

    def __call__(self, model: Any, **_: Any) -> None:
        if model.name == "Publish" and self.failed < self.count:
            self.failed += 1
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "Publish")


@pytest.fixture
def failing_publishes() -> Iterator[FailingPublishes]:
    fault = FailingPublishes(1)
    events = notifications._sns().meta.events
    events.register("before-call.sns.Publish", fault)
    yield fault
    events.unregister("before-call.sns.Publish", fault)


def test_a_failed_publish_stays_pending_and_the_next_sweep_delivers_it(
    pipeline: Pipeline, failing_publishes: FailingPublishes
) -> None:
    # Given two unanswered mentions, both breached by the time of the sweep, and SNS failing one publish
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0), customer("2", 0, author="bob", conversation="c2")])
    pipeline.run()
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")

    # When one sweep meets the failure and the next minute's sweep runs normally
    with time_machine.travel(T0 + timedelta(hours=2), tick=False):
        first = handler(load_event("sweep_schedule.json"), FakeLambdaContext())
        after_first = pipeline.alerts()
    with time_machine.travel(T0 + timedelta(hours=2, minutes=1), tick=False):
        second = handler(load_event("sweep_schedule.json"), FakeLambdaContext())
        after_second = pipeline.alerts()

    # Then the failed alert was kept and delivered by the second sweep: both customers' breaches arrive,
    # each under its own stable id, and nothing is left pending
    assert failing_publishes.failed == 1
    assert (first["alerts"], first["alerts_pending"]) == (1, 1)
    assert (second["alerts"], second["alerts_pending"]) == (1, 0)
    received = after_first + after_second
    assert sorted(message["customer"] for message in received) == ["alice", "bob"]
    assert all(message["status"] == "breached" for message in received)
    assert len({message["alert_id"] for message in received}) == 2
    assert AlertOutbox(pipeline.table_name).pending() == []


def sweep_with_outbox(pipeline: Pipeline, publish: Any, now: Any, index: OpenWaitIndex | None = None) -> Any:
    return sweep(
        index or OpenWaitIndex(pipeline.table_name),
        pipeline.conversations,
        pipeline.posts,
        directory_from([ACME]),
        publish,
        now=now,
        outbox=AlertOutbox(pipeline.table_name),
    )


def one_customer_waiting(pipeline: Pipeline) -> None:
    """Acme, and one customer waiting for it since T0."""
    pipeline.add_brands([ACME])
    pipeline.write([customer("1", 0)])
    pipeline.run()


def sweep_dying_before_its_transition(pipeline: Pipeline, inject: Faults, delivered: list[Alert], at: datetime) -> None:
    """A sweep whose outbox put goes through and whose state write after it dies (a Lambda timeout)."""
    inject(FaultInjector({"PutItem"}, 2, TimeoutError, limit=1))
    with pytest.raises(TimeoutError):
        sweep_with_outbox(pipeline, delivered.append, at)
    inject.stop()


def test_overlapping_sweeps_notify_once_at_the_receiver_through_the_alert_id(pipeline: Pipeline) -> None:
    # Given one breached wait, and a sweep whose publish is slow: a second sweep runs while it waits for SNS
    one_customer_waiting(pipeline)
    seen_by_both = OpenWaitIndex(pipeline.table_name).all_open_waits()

    class StaleIndex(OpenWaitIndex):
        def all_open_waits(self) -> list[OpenWaitEntry]:
            return seen_by_both

    now = T0 + timedelta(hours=2)
    delivered: list[Alert] = []

    def slow_publish(alert: Alert) -> None:
        # The second sweep finds the alert pending (not acknowledged yet) with its transition recorded.
        sweep_with_outbox(pipeline, delivered.append, now, StaleIndex(pipeline.table_name))
        delivered.append(alert)

    # When both sweeps act on what they read, and then a third one runs
    sweep_with_outbox(pipeline, slow_publish, now, StaleIndex(pipeline.table_name))
    sweep_with_outbox(pipeline, delivered.append, now + timedelta(minutes=1), StaleIndex(pipeline.table_name))

    # Then the alert may be delivered twice (at least once), but always under one id: the receiver shows it once
    assert [alert.status for alert in delivered] == [WaitStatus.BREACHED, WaitStatus.BREACHED]
    assert len({alert.alert_id for alert in delivered}) == 1
    assert AlertOutbox(pipeline.table_name).pending() == []


def test_a_sweep_that_dies_before_writing_the_transition_leaves_an_alert_the_next_sweep_delivers_once(
    pipeline: Pipeline, inject: Faults
) -> None:
    one_customer_waiting(pipeline)
    delivered: list[Alert] = []
    sweep_dying_before_its_transition(pipeline, inject, delivered, T0 + timedelta(hours=2))
    assert len(AlertOutbox(pipeline.table_name).pending()) == 1

    outcome = sweep_with_outbox(pipeline, delivered.append, T0 + timedelta(hours=2, minutes=1))

    assert [alert.status for alert in delivered] == [WaitStatus.BREACHED]
    assert outcome.dropped == 0
    assert AlertOutbox(pipeline.table_name).pending() == []


def test_an_alert_whose_transition_was_never_written_is_dropped_once_the_wait_is_answered(
    pipeline: Pipeline, inject: Faults
) -> None:
    one_customer_waiting(pipeline)
    delivered: list[Alert] = []
    sweep_dying_before_its_transition(pipeline, inject, delivered, T0 + timedelta(minutes=50))

    # When the brand answers in time, before the next sweep
    pipeline.write([brand("2", 55)])
    pipeline.run()
    outcome = sweep_with_outbox(pipeline, delivered.append, T0 + timedelta(minutes=56))

    # Then the at-risk warning that was never recorded is not sent
    assert delivered == []
    assert outcome.dropped == 1
    assert AlertOutbox(pipeline.table_name).pending() == []


def test_the_alert_id_is_stable_and_travels_in_the_message_and_its_attributes(pipeline: Pipeline) -> None:
    one_customer_waiting(pipeline)
    delivered: list[Alert] = []
    sweep_with_outbox(pipeline, delivered.append, T0 + timedelta(minutes=50))
    [alert] = delivered

    again = Alert.from_record(alert.to_record())

    assert again == alert and again.alert_id == alert.alert_id
    assert len(alert.alert_id) == 32
    assert f'"alert_id": "{alert.alert_id}"' in alert.message()
