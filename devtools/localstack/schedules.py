"""EventBridge schedules of the template (Schedule and ScheduleV2 events), run by local threads.

Rate expressions fire at once, then every period (divided by the stack's speed-up). A
schedule whose previous invocation is still running skips its tick, as a function with
reserved concurrency 1 throttles the overlapping invocation; RetryPolicy's
MaximumRetryAttempts is honoured for failed invocations. Schedules whose State is DISABLED
stay off. cron() and at() expressions are reported and not run.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from devtools.localstack.cloudformation import ACCOUNT_ID, REGION, Stack
from devtools.localstack.functions import FunctionError, FunctionSpec

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}


def rate_seconds(expression: str) -> float | None:
    """The period of a rate() expression in seconds; None for cron() and at()."""
    match = _RATE.match(expression.strip())
    if match is None:
        return None
    count, unit = int(match.group(1)), match.group(2).rstrip("s")
    if count < 1:
        raise ValueError(f"invalid schedule expression {expression!r}")
    return float(count * _UNIT_SECONDS[unit])


@dataclass(frozen=True)
class ScheduleSpec:
    """One schedule that invokes one function with a fixed input."""

    name: str
    function: str
    expression: str
    event: dict[str, Any]
    enabled: bool = True
    maximum_retry_attempts: int = 0

    @property
    def period_seconds(self) -> float | None:
        return rate_seconds(self.expression)


def template_schedules(stack: Stack, specs: dict[str, FunctionSpec]) -> list[ScheduleSpec]:
    schedules = []
    for spec in specs.values():
        for event_name, event in spec.events.items():
            kind = event.get("Type")
            if kind not in ("Schedule", "ScheduleV2"):
                continue
            properties = stack.resolve(event.get("Properties", {}))
            state = properties.get("State")
            enabled = state != "DISABLED" if state is not None else bool(properties.get("Enabled", True))
            payload = _schedule_input(kind, properties, f"{spec.logical_id}{event_name}")
            schedules.append(
                ScheduleSpec(
                    name=f"{spec.logical_id}.{event_name}",
                    function=spec.logical_id,
                    expression=str(properties["Schedule" if kind == "Schedule" else "ScheduleExpression"]),
                    event=payload,
                    enabled=enabled,
                    maximum_retry_attempts=int(properties.get("RetryPolicy", {}).get("MaximumRetryAttempts", 0)),
                )
            )
    return schedules


def _schedule_input(kind: str, properties: dict[str, Any], rule_name: str) -> dict[str, Any]:
    if "Input" in properties:
        value = json.loads(str(properties["Input"]))
        return value if isinstance(value, dict) else {"input": value}
    if kind == "ScheduleV2":
        # EventBridge Scheduler sends an empty object when the target has no input (events/sweep_schedule.json).
        return {}
    # An EventBridge rule sends its scheduled event.
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT_ID,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": REGION,
        "resources": [f"arn:aws:events:{REGION}:{ACCOUNT_ID}:rule/{rule_name}"],
        "detail": {},
    }


@dataclass
class ScheduleRun:
    schedule: ScheduleSpec
    invocations: int = 0
    skipped: int = 0
    failures: int = 0
    last_result: Any = None
    last_error: str | None = None
    running: threading.Event = field(default_factory=threading.Event)


Invoke = Callable[[str, dict[str, Any]], Any]
Report = Callable[[ScheduleRun], None]


class Scheduler:
    """A thread per enabled rate schedule."""

    def __init__(self, invoke: Invoke, speed: float = 1.0, on_result: Report | None = None) -> None:
        if speed <= 0:
            raise ValueError("speed must be positive")
        self._invoke = invoke
        self._speed = speed
        self._on_result = on_result
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.runs: dict[str, ScheduleRun] = {}
        self.not_run: list[str] = []

    def start(self, schedules: list[ScheduleSpec]) -> None:
        for schedule in schedules:
            if not schedule.enabled:
                self.not_run.append(f"{schedule.name} (disabled)")
                continue
            period = schedule.period_seconds
            if period is None:
                self.not_run.append(f"{schedule.name} ({schedule.expression}: only rate() is emulated)")
                continue
            run = self.runs[schedule.name] = ScheduleRun(schedule)
            interval = max(1.0, period / self._speed)
            thread = threading.Thread(target=self._loop, args=(run, interval), name=f"schedule-{schedule.name}")
            thread.daemon = True
            self._threads.append(thread)
            thread.start()

    def interval_of(self, schedule: ScheduleSpec) -> float | None:
        period = schedule.period_seconds
        return None if period is None else max(1.0, period / self._speed)

    def _loop(self, run: ScheduleRun, interval: float) -> None:
        next_fire = time.monotonic()
        while not self._stop.is_set():
            self._fire(run)
            next_fire += interval
            now = time.monotonic()
            if next_fire < now:
                # The invocation outlasted its period: the ticks it covered were throttled.
                missed = int((now - next_fire) // interval) + 1
                run.skipped += missed
                next_fire += missed * interval
            self._stop.wait(next_fire - now)

    def _fire(self, run: ScheduleRun) -> None:
        schedule = run.schedule
        for attempt in range(schedule.maximum_retry_attempts + 1):
            if self._stop.is_set():
                return
            run.running.set()
            run.invocations += 1
            try:
                run.last_result, run.last_error = self._invoke(schedule.function, dict(schedule.event)), None
            except FunctionError as error:
                run.failures += 1
                run.last_result, run.last_error = None, str(error)
            finally:
                run.running.clear()
            if self._on_result is not None and not self._stop.is_set():
                self._on_result(run)
            if run.last_error is None:
                return
            self._stop.wait(min(2.0**attempt, 30.0))

    def stop(self) -> None:
        """Fire nothing more; an invocation under way ends on its own (or when its container is stopped)."""
        self._stop.set()

    def join(self, timeout: float = 30.0) -> None:
        for thread in self._threads:
            thread.join(timeout)
