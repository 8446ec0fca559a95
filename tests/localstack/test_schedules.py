"""The template's schedules run on local threads: rate expressions, accelerated, one invocation at a time."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from devtools.localstack.cloudformation import PhysicalResource, Stack
from devtools.localstack.functions import FunctionError, function_specs
from devtools.localstack.resources import PLACEHOLDERS
from devtools.localstack.schedules import (
    Scheduler,
    ScheduleSpec,
    rate_seconds,
    template_schedules,
)


def placeholder_stack() -> Stack:
    """The real template, with names for what functions reference (nothing is created)."""
    stack = Stack("replyclock-local")
    for logical_id, resource in stack.resources.items():
        kind = resource["Type"]
        if kind in PLACEHOLDERS:
            stack.physical[logical_id] = PLACEHOLDERS[kind](stack, logical_id)
        else:
            name = stack.physical_name(logical_id)
            stack.physical[logical_id] = PhysicalResource(
                ref=name,
                attributes={"Arn": f"arn:aws:x:::{name}", "StreamArn": "s", "TopicName": name, "QueueName": name},
            )
    return stack


@pytest.mark.parametrize(
    ("expression", "seconds"),
    [("rate(1 minute)", 60), ("rate(5 minutes)", 300), ("rate(2 hours)", 7200), ("rate(1 day)", 86400)],
)
def test_rate_expressions_give_their_period(expression: str, seconds: float) -> None:
    assert rate_seconds(expression) == seconds


def test_cron_and_at_expressions_are_not_rates() -> None:
    assert rate_seconds("cron(0 12 * * ? *)") is None
    assert rate_seconds("at(2026-01-01T00:00:00)") is None


def test_the_template_schedules_the_sweep_and_the_ingest_tick_every_minute() -> None:
    stack = placeholder_stack()
    schedules = {schedule.name: schedule for schedule in template_schedules(stack, function_specs(stack))}
    sweep = schedules["SweepFunction.EveryMinute"]
    tick = schedules["IngestFunction.DueSourcesTick"]

    # One tick for every source: its event names none (the function polls whatever is due)
    for schedule in (sweep, tick):
        assert (schedule.expression, schedule.event, schedule.enabled, schedule.maximum_retry_attempts) == (
            "rate(1 minute)",
            {},
            True,
            0,
        )
    assert [s.name for s in schedules.values() if s.function == "IngestFunction"] == [tick.name]


def run_scheduler(schedules: list[ScheduleSpec], invoke: Any, seconds: float, speed: float = 60.0) -> Scheduler:
    scheduler = Scheduler(invoke, speed=speed)
    scheduler.start(schedules)
    time.sleep(seconds)
    scheduler.stop()
    return scheduler


def test_an_accelerated_rate_schedule_fires_at_once_then_every_period() -> None:
    calls: list[tuple[str, dict[str, Any], float]] = []
    started = time.monotonic()
    schedule = ScheduleSpec("SweepFunction.EveryMinute", "SweepFunction", "rate(1 minute)", {"x": 1})

    scheduler = run_scheduler([schedule], lambda f, e: calls.append((f, e, time.monotonic() - started)), 2.5)

    # rate(1 minute) at 60x speed: at 0 s, 1 s and 2 s
    assert {(function, str(event)) for function, event, _ in calls} == {("SweepFunction", "{'x': 1}")}
    assert calls[0][2] < 0.5
    assert [round(at) for _, _, at in calls] == [0, 1, 2]
    assert scheduler.runs[schedule.name].invocations == 3


def test_a_tick_that_comes_while_the_last_invocation_runs_is_skipped() -> None:
    running = threading.Lock()
    overlaps = []

    def slow(function: str, event: dict[str, Any]) -> None:
        if not running.acquire(blocking=False):
            overlaps.append(function)
            return
        time.sleep(1.6)
        running.release()

    schedule = ScheduleSpec("S.E", "S", "rate(1 minute)", {})
    scheduler = run_scheduler([schedule], slow, 3.0)

    assert overlaps == []
    assert scheduler.runs[schedule.name].skipped >= 1


def test_disabled_and_cron_schedules_do_not_run_and_are_reported() -> None:
    calls: list[str] = []
    schedules = [
        ScheduleSpec("A.Off", "A", "rate(1 minute)", {}, enabled=False),
        ScheduleSpec("B.Cron", "B", "cron(0 12 * * ? *)", {}),
    ]
    scheduler = run_scheduler(schedules, lambda f, e: calls.append(f), 0.3)
    assert calls == []
    assert len(scheduler.not_run) == 2


def test_a_failed_invocation_is_retried_as_its_retry_policy_says() -> None:
    attempts: list[int] = []

    def failing(function: str, event: dict[str, Any]) -> None:
        attempts.append(1)
        raise FunctionError(function, {"errorType": "Boom", "errorMessage": "no"})

    schedule = ScheduleSpec("S.E", "S", "rate(1 hour)", {}, maximum_retry_attempts=1)
    scheduler = run_scheduler([schedule], failing, 2.0, speed=1.0)

    assert len(attempts) == 2
    assert scheduler.runs[schedule.name].last_error is not None
