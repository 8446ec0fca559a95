"""Lambda's DynamoDB-stream event-source mappings, one poller thread each, over moto's real streams.

Each mapping of the template (a function's `Type: DynamoDB` event) gets its own reader of
the stream, as each Lambda event-source mapping reads a stream on its own. A poller reads
new records, keeps those its FilterCriteria match, waits up to MaximumBatchingWindowInSeconds
to fill a batch of BatchSize, and hands them to devtools.localstack.streams.EventSourceMapping, which
invokes the function with Lambda's semantics (partial failures retried from the first
failed record, bisection, retry limit, on-failure queue).

`PollerGroup.wait_until_drained` tells when every record written so far, and every record
those deliveries wrote in turn (measure's state changes feed aggregate), has been delivered.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3

from devtools.localstack.cloudformation import Stack
from devtools.localstack.functions import Functions, FunctionSpec
from devtools.localstack.streams import EventSourceMapping, Record, StreamReader, passes_filters
from devtools.localstack.template import StreamMapping

# Lambda polls each shard about four times a second.
POLL_INTERVAL_SECONDS = 0.25


@dataclass(frozen=True)
class StreamTrigger:
    """A function's stream event source, resolved: the mapping plus where it reads and parks."""

    mapping: StreamMapping
    stream_arn: str
    starting_position: str
    batching_window_seconds: float
    on_failure_queue_url: str | None


def stream_triggers(stack: Stack, specs: dict[str, FunctionSpec]) -> list[StreamTrigger]:
    triggers = []
    for spec in specs.values():
        for event in spec.events.values():
            if event.get("Type") != "DynamoDB":
                continue
            properties = stack.resolve(event["Properties"])
            if not properties.get("Enabled", True):
                continue
            destination = properties.get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            raw_destination = event["Properties"].get("DestinationConfig", {}).get("OnFailure", {}).get("Destination")
            queue_id = raw_destination["Fn::GetAtt"][0] if isinstance(raw_destination, dict) else None
            mapping = StreamMapping(
                function=spec.logical_id,
                handler_path=spec.handler_path,
                handler_name=spec.handler_name,
                batch_size=int(properties.get("BatchSize", 100)),
                maximum_retry_attempts=int(properties.get("MaximumRetryAttempts", -1)),
                bisect_on_error=bool(properties.get("BisectBatchOnFunctionError", False)),
                report_batch_item_failures="ReportBatchItemFailures" in properties.get("FunctionResponseTypes", []),
                filter_patterns=tuple(
                    json.loads(entry["Pattern"]) for entry in properties.get("FilterCriteria", {}).get("Filters", [])
                ),
                on_failure_queue=queue_id,
            )
            triggers.append(
                StreamTrigger(
                    mapping=mapping,
                    stream_arn=str(properties["Stream"]),
                    starting_position=str(properties.get("StartingPosition", "TRIM_HORIZON")),
                    batching_window_seconds=float(properties.get("MaximumBatchingWindowInSeconds", 0)),
                    on_failure_queue_url=_queue_url(stack, str(destination)) if destination else None,
                )
            )
    return triggers


def _queue_url(stack: Stack, arn: str) -> str | None:
    for physical in stack.physical.values():
        if physical.attributes.get("Arn") == arn and "QueueUrl" in physical.attributes:
            return physical.attributes["QueueUrl"]
    return None


class Checkpoints:
    """Where each mapping has read its stream up to, per shard, in a JSON file per function (`run --data DIR`).

    Saved only when everything read up to there has been delivered (or parked), so a restart resumes
    after it; a crash between a delivery and its checkpoint redelivers that batch, which the consumers
    take exactly once (they are idempotent, as Lambda's at-least-once delivery requires).
    A checkpoint of another stream (the table was made anew) is ignored.
    """

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        directory.mkdir(parents=True, exist_ok=True)

    def _path(self, function: str) -> Path:
        return self.directory / f"{function}.json"

    def load(self, function: str, stream_arn: str) -> dict[str, str]:
        try:
            saved = json.loads(self._path(function).read_text())
        except (OSError, ValueError):
            return {}
        if not isinstance(saved, dict) or saved.get("stream_arn") != stream_arn:
            return {}
        return {str(shard): str(sequence) for shard, sequence in saved.get("shards", {}).items()}

    def save(self, function: str, stream_arn: str, shards: dict[str, str]) -> None:
        path = self._path(function)
        temporary = path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"stream_arn": stream_arn, "shards": shards}, sort_keys=True))
        os.replace(temporary, path)


class StreamPoller:
    """One event-source mapping: a thread that polls, batches and delivers."""

    def __init__(
        self, trigger: StreamTrigger, functions: Functions, group: PollerGroup, checkpoints: Checkpoints | None = None
    ) -> None:
        self.trigger = trigger
        self._checkpoints = checkpoints
        self._group = group
        self._stop = threading.Event()
        sqs = boto3.client("sqs")
        queue_url = trigger.on_failure_queue_url

        def park(body: dict[str, Any]) -> None:
            if queue_url is not None:
                sqs.send_message(QueueUrl=queue_url, MessageBody=json.dumps(body))

        logical_id = trigger.mapping.function
        self.mapping = EventSourceMapping(
            trigger.mapping,
            send_to_failure_queue=park,
            handler=lambda event, context: functions.invoke(logical_id, event),
            function_arn=functions.specs[logical_id].arn,
            cancelled=self._stop.is_set,
        )
        start_after = checkpoints.load(logical_id, trigger.stream_arn) if checkpoints is not None else {}
        self.reader = StreamReader(
            boto3.client("dynamodbstreams"), trigger.stream_arn, trigger.starting_position, start_after
        )
        self._saved = dict(start_after)
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=f"esm-{logical_id}", daemon=True)

    @property
    def function(self) -> str:
        return self.trigger.mapping.function

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def join(self, timeout: float | None = None) -> None:
        self._thread.join(timeout)

    def _run(self) -> None:
        try:
            self._poll_until_stopped()
        except Exception as error:  # noqa: BLE001 - a poller that cannot go on stops, loudly
            if not self._stop.is_set():
                self.error = error
                self._group.poller_failed(self, error)

    def _poll_until_stopped(self) -> None:
        buffers: dict[str, list[Record]] = {}
        first_buffered = 0.0
        while not self._stop.is_set():
            poll_started = self._group.clock()
            fresh = self.reader.poll()
            for shard_id, records in fresh.items():
                matching = [r for r in records if passes_filters(r, self.trigger.mapping.filter_patterns)]
                if matching:
                    if not any(buffers.values()):
                        first_buffered = time.monotonic()
                    buffers.setdefault(shard_id, []).extend(matching)
            pending = sum(len(records) for records in buffers.values())
            window_open = time.monotonic() - first_buffered < self.trigger.batching_window_seconds
            # Like Lambda: deliver a full batch at once, else wait up to the batching window for more
            # (unless the stream has nothing more to give right now).
            if pending and (pending >= self.trigger.mapping.batch_size or not window_open or not fresh):
                for shard_id, records in list(buffers.items()):
                    buffers[shard_id] = []
                    self.mapping.deliver(shard_id, records)
                if not self._stop.is_set():
                    self._checkpoint()
                self._group.delivered(self)
                continue
            if not pending:
                self._checkpoint()  # what was read was all filtered out
            if not fresh and not pending:
                self._group.idle(self, poll_started)
            self._stop.wait(POLL_INTERVAL_SECONDS)

    def _checkpoint(self) -> None:
        """Everything read so far is delivered: remember where to resume."""
        if self._checkpoints is None or self.reader.positions == self._saved:
            return
        self._saved = dict(self.reader.positions)
        self._checkpoints.save(self.function, self.trigger.stream_arn, self._saved)


class DrainTimeout(TimeoutError):
    """The stream did not drain in the time allowed."""


class PollerGroup:
    """Every stream poller of the stack, and the bookkeeping that tells when they have all caught up."""

    def __init__(self, on_error: Callable[[str, BaseException], None] | None = None) -> None:
        self.pollers: list[StreamPoller] = []
        self._condition = threading.Condition()
        self._tick = 0
        self._deliveries = 0
        self._idle_since: dict[int, int] = {}
        self._on_error = on_error
        self.failures: list[tuple[str, BaseException]] = []

    def clock(self) -> int:
        """A logical clock: strictly increasing, shared by every poller."""
        with self._condition:
            self._tick += 1
            return self._tick

    def add(self, poller: StreamPoller) -> None:
        self.pollers.append(poller)

    def delivered(self, poller: StreamPoller) -> None:
        with self._condition:
            self._deliveries += 1
            self._idle_since.pop(id(poller), None)
            self._condition.notify_all()

    def idle(self, poller: StreamPoller, poll_started: int) -> None:
        with self._condition:
            self._idle_since[id(poller)] = poll_started
            self._condition.notify_all()

    def poller_failed(self, poller: StreamPoller, error: BaseException) -> None:
        with self._condition:
            self.failures.append((poller.function, error))
            self._condition.notify_all()
        if self._on_error is not None:
            self._on_error(poller.function, error)

    def start(self) -> None:
        for poller in self.pollers:
            poller.start()

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()

    def join(self, timeout: float = 30.0) -> None:
        for poller in self.pollers:
            poller.join(timeout)

    def wait_until_drained(self, timeout: float, progress: Callable[[], None] | None = None) -> None:
        """Return once every poller has found nothing new in a poll that began after everything was delivered.

        A round starts at a tick T with the delivery count D. It succeeds when every poller has
        reported an empty poll that started after T while no delivery finished meanwhile:
        then nothing was pending at those polls, and nothing has been written since by a
        delivery (a poller's writes all happen inside deliveries). Writers outside the
        pollers (ingest, the sweeper) must be quiet while this waits.
        """
        deadline = time.monotonic() + timeout
        while True:
            with self._condition:
                # Taken together: a delivery that finished before this round began wrote before it began.
                self._tick += 1
                start_tick, deliveries = self._tick, self._deliveries
            while True:
                with self._condition:
                    if self.failures:
                        function, error = self.failures[0]
                        raise RuntimeError(f"the stream poller of {function} stopped: {error}") from error
                    if self._deliveries != deliveries:
                        break  # something was delivered meanwhile: start a new round
                    if all(self._idle_since.get(id(poller), 0) > start_tick for poller in self.pollers):
                        return
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise DrainTimeout(f"the stream did not drain within {timeout:.0f} s")
                    self._condition.wait(min(remaining, 0.5))
                if progress is not None:
                    progress()
