"""`make run --replay`: the sweeper's schedule starts only once the replay is measured."""

from __future__ import annotations

from collections.abc import Collection
from typing import Any, cast

from devtools.cli import SWEEPER, sweep_after_replay

SCHEDULED = {"IngestFunction", SWEEPER}


class RecordingStack:
    """Records which schedules start, and when, against the replay."""

    def __init__(self) -> None:
        self.events: list[str] = []

    def scheduled_functions(self) -> set[str]:
        return set(SCHEDULED)

    def start_schedules(self, functions: Collection[str] | None = None) -> None:
        self.events.extend(f"start {function}" for function in sorted(functions or SCHEDULED))


def test_the_sweeper_starts_only_after_the_replay_is_measured() -> None:
    stack = RecordingStack()

    sweep_after_replay(cast(Any, stack), lambda: stack.events.append("replay measured"))

    assert stack.events == ["start IngestFunction", "replay measured", f"start {SWEEPER}"]


def test_a_replay_that_stops_early_leaves_the_sweeper_unstarted() -> None:
    stack = RecordingStack()

    def interrupted() -> None:
        raise KeyboardInterrupt

    try:
        sweep_after_replay(cast(Any, stack), interrupted)
    except KeyboardInterrupt:
        pass

    assert stack.events == ["start IngestFunction"]
