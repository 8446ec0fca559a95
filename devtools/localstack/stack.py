"""The whole service on this machine: emulator, resources, functions, stream pollers, schedules, HTTP API."""

from __future__ import annotations

import json
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Collection, Iterable
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import boto3
from boto3.dynamodb.types import TypeSerializer

from devtools.localstack.cloudformation import Stack
from devtools.localstack.dynamodb_local import DynamoDBLocal
from devtools.localstack.emulator import TABLE_FOLDER, Emulator, TableEmulator, environment
from devtools.localstack.functions import FunctionError, Functions, function_specs
from devtools.localstack.http_api import AccessLog, LocalHttpApi, template_routes
from devtools.localstack.pollers import Checkpoints, PollerGroup, StreamPoller, stream_triggers
from devtools.localstack.resources import deploy
from devtools.localstack.schedules import Report, Scheduler, template_schedules
from devtools.localstack.streams import passes_filters

if TYPE_CHECKING:
    from replyclock.models.domain import Brand
    from replyclock.models.sources import Source

STACK_NAME = "replyclock-local"
INGEST_FUNCTION = "IngestFunction"


@dataclass
class StackOptions:
    api_port: int = 3000
    emulator_port: int = 0
    # Rate schedules run this many times faster (a sweep "every minute" runs every 60/speed seconds).
    speed: float = 1.0
    parameter_overrides: dict[str, str] = field(default_factory=dict)
    # Function logs go here (a new temporary directory when None).
    log_dir: Path | None = None
    access_log: AccessLog | None = None
    on_schedule_result: Report | None = None
    on_alert: Callable[[str, dict[str, Any]], None] | None = None
    on_poller_error: Callable[[str, BaseException], None] | None = None
    # Where the table runs (devtools.localstack.emulator.TableEmulator). `replyclock run` asks for "auto"
    # (DynamoDB Local, else moto); the default keeps the in-process tests on moto, which starts in no time.
    table: TableEmulator = "moto"
    # Keep the table (DynamoDB Local's -dbPath) and the stream readers' checkpoints here across restarts.
    data_dir: Path | None = None
    # DynamoDB Local launched by the caller (emulator.launch_dynamodb_local), so its JVM starts while the caller
    # imports and prepares the rest; None: the stack launches it itself, if `table` asks for it.
    table_server: DynamoDBLocal | None = None


class IngestFailed(RuntimeError):
    """Polling a source through the ingest function failed or did not finish."""


class LocalStack:
    """Start with `start()`, stop with `stop()` (or use it as a context manager).

    One per process at a time: moto keeps every emulated resource in process-wide state.
    """

    _running: LocalStack | None = None
    _running_lock = threading.Lock()

    def __init__(self, options: StackOptions | None = None) -> None:
        self.options = options or StackOptions()
        self.stack = Stack(STACK_NAME, self.options.parameter_overrides)
        self.log_dir = self.options.log_dir
        if self.log_dir is None:
            self.log_dir = Path(tempfile.mkdtemp(prefix="replyclock-local-"))
        data_dir = self.options.data_dir
        self.emulator = Emulator(
            self.options.emulator_port,
            self.options.table,
            data_dir / TABLE_FOLDER if data_dir is not None else None,
            self.log_dir,
            self.options.table_server,
        )
        self.checkpoints = Checkpoints(data_dir / "checkpoints") if data_dir is not None else None
        self.not_emulated: list[str] = []
        self.functions: Functions | None = None
        self.pollers = PollerGroup(self.options.on_poller_error)
        self.http: LocalHttpApi | None = None
        self.scheduler = Scheduler(self.invoke, self.options.speed, self.options.on_schedule_result)
        self.endpoint_url = ""
        self._cleanup = ExitStack()
        self._stop_inbox = threading.Event()
        self._inbox_thread: threading.Thread | None = None
        self._stopped = False

    # --- lifecycle -------------------------------------------------------------------

    def start(self) -> LocalStack:
        with LocalStack._running_lock:
            if LocalStack._running is not None:
                raise RuntimeError("a local stack is already running in this process; stop it first")
            LocalStack._running = self
        try:
            self._start()
        except BaseException:
            self.stop()
            raise
        return self

    def _start(self) -> None:
        assert self.log_dir is not None
        self.log_dir.mkdir(parents=True, exist_ok=True)
        if self.options.data_dir is not None and self.options.table == "moto":
            raise RuntimeError("keeping data across restarts needs the table on DynamoDB Local")
        # Registered first: it also ends a DynamoDB Local that the caller launched, if starting fails.
        self._cleanup.callback(self.emulator.stop)
        self.endpoint_url = self.emulator.start()
        if self.options.data_dir is not None and self.emulator.dynamodb is None:
            raise RuntimeError(f"keeping data across restarts needs DynamoDB Local: {self.emulator.fallback_reason}")
        # Every boto3 client of this process (and of the function containers) talks to the emulator.
        self._cleanup.enter_context(environment(self.emulator.client_environment()))
        _forget_cached_clients()
        self._cleanup.callback(_forget_cached_clients)
        self.not_emulated = deploy(self.stack)
        specs = function_specs(self.stack)
        self.functions = Functions(specs, self.emulator.client_environment(), self.log_dir)
        triggers, routes = stream_triggers(self.stack, specs), template_routes(self.stack)
        # A container's cold start costs a CPU-second or two: those of the stream consumers, the API and the
        # ingest tick run now, and the rest (the sweeper, redrive) at their first invocation, as on Lambda,
        # rather than compete with the first ingest on a busy machine.
        invoked_first = {trigger.mapping.function for trigger in triggers} | {route.function for route in routes}
        self.functions.start(invoked_first | ({INGEST_FUNCTION} & set(specs)))
        for trigger in triggers:
            self.pollers.add(StreamPoller(trigger, self.functions, self.pollers, self.checkpoints))
        self.pollers.start()
        self.http = LocalHttpApi(routes, self.invoke, port=self.options.api_port, access_log=self.options.access_log)
        self.http.start()
        self._start_inbox()

    def start_schedules(self, functions: Collection[str] | None = None) -> None:
        """Run the template's schedules (the ingest tick polls every due source configured in the table).

        `functions`: only the schedules of these functions (the others can be started by a later call).
        """
        assert self.functions is not None
        schedules = template_schedules(self.stack, self.functions.specs)
        self.scheduler.start([s for s in schedules if functions is None or s.function in functions])

    def scheduled_functions(self) -> set[str]:
        assert self.functions is not None
        return {schedule.function for schedule in template_schedules(self.stack, self.functions.specs)}

    def stop(self) -> None:
        if self._stopped:
            return
        self._stopped = True
        self.scheduler.stop()
        self.pollers.stop()
        self._stop_inbox.set()
        # Stopping the containers ends any invocation under way, so the threads waiting on one return.
        if self.functions is not None:
            self.functions.stop()
        self.scheduler.join()
        self.pollers.join()
        if self.http is not None:
            self.http.stop()
        if self._inbox_thread is not None:
            self._inbox_thread.join(10)
        self._cleanup.close()
        with LocalStack._running_lock:
            if LocalStack._running is self:
                LocalStack._running = None

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what the template made ------------------------------------------------------

    def resource(self, logical_id: str) -> str:
        return self.stack.physical[logical_id].ref

    @property
    def table_name(self) -> str:
        tables = self.stack.resources_of_type("AWS::DynamoDB::Table")
        if len(tables) != 1:
            raise LookupError(f"expected one table in the template, found {sorted(tables)}")
        return self.resource(next(iter(tables)))

    @property
    def table_backend(self) -> str:
        """Where the table runs: DynamoDB Local or moto."""
        return self.emulator.table_backend

    @property
    def table_endpoint_url(self) -> str:
        return self.emulator.table_endpoint_url

    @property
    def api_url(self) -> str:
        assert self.http is not None
        return self.http.url

    @property
    def ingest_function(self) -> str:
        """The function that polls sources ({"source_id": ...} polls one now; its schedule's tick, the due ones)."""
        assert self.functions is not None
        if INGEST_FUNCTION not in self.functions.specs:
            raise LookupError(f"the template has no {INGEST_FUNCTION}")
        return INGEST_FUNCTION

    def post_consumers(self) -> list[StreamPoller]:
        """The pollers whose filters take a newly stored post (the measuring stage)."""
        from replyclock.dal.posts import post_to_item
        from replyclock.models.domain import AuthorRole, Post

        sample = Post.model_validate(
            {
                "channel": "x",
                "id": "1",
                "author": "someone",
                "author_role": AuthorRole.CUSTOMER,
                "created_at": "2026-01-01T00:00:00Z",
                "conversation_id": "1",
            }
        )
        item = post_to_item(sample)
        serializer = TypeSerializer()
        record = {
            "eventName": "INSERT",
            "dynamodb": {
                "Keys": {name: serializer.serialize(item[name]) for name in ("pk", "sk")},
                "NewImage": {name: serializer.serialize(value) for name, value in item.items()},
            },
        }
        return [p for p in self.pollers.pollers if passes_filters(record, p.trigger.mapping.filter_patterns)]

    # --- using it ----------------------------------------------------------------------

    def invoke(self, logical_id: str, event: dict[str, Any]) -> Any:
        assert self.functions is not None
        return self.functions.invoke(logical_id, event)

    def ingest(self, source_id: str, timeout: float = 900.0) -> list[dict[str, Any]]:
        """Poll a source through the ingest function until it has nothing more; returns each poll's outcome."""
        deadline = time.monotonic() + timeout
        outcomes: list[dict[str, Any]] = []
        while True:
            try:
                outcome = self.invoke(self.ingest_function, {"source_id": source_id})
            except FunctionError as error:
                raise IngestFailed(str(error)) from error
            outcomes.append(outcome)
            status = outcome.get("status")
            if status == "completed":
                return outcomes
            if status not in ("deadline", "busy", "throttled", "lease_lost"):
                raise IngestFailed(f"polling {source_id} ended with status {status!r}: {outcome}")
            if time.monotonic() > deadline:
                raise IngestFailed(f"polling {source_id} did not complete within {timeout:.0f} s")
            if status != "deadline":
                time.sleep(float(outcome.get("retry_after_seconds") or 1.0))

    def wait_until_drained(self, timeout: float = 600.0, progress: Callable[[], None] | None = None) -> None:
        self.pollers.wait_until_drained(timeout, progress)

    def get_json(self, path: str, query: dict[str, str] | None = None, timeout: float = 60.0) -> tuple[int, Any]:
        """GET through the local HTTP API, as curl would."""
        url = f"{self.api_url}{path}"
        if query:
            url += "?" + urllib.parse.urlencode(query)
        try:
            with urllib.request.urlopen(url, timeout=timeout) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def parked(self) -> int:
        """Records that exhausted their retries and were parked on an on-failure queue."""
        return sum(poller.mapping.report.parked for poller in self.pollers.pollers)

    # --- alerts --------------------------------------------------------------------------

    def _start_inbox(self) -> None:
        """Subscribe a local queue to every topic, and hand what is published to on_alert."""
        if self.options.on_alert is None:
            return
        sqs, sns = boto3.client("sqs"), boto3.client("sns")
        url = sqs.create_queue(QueueName=f"{STACK_NAME}-local-alerts-inbox")["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        for logical_id in self.stack.resources_of_type("AWS::SNS::Topic"):
            if logical_id in self.stack.physical:
                sns.subscribe(TopicArn=self.resource(logical_id), Protocol="sqs", Endpoint=arn)
        self._inbox_thread = threading.Thread(target=self._tail_inbox, args=(url,), name="alerts-inbox", daemon=True)
        self._inbox_thread.start()

    def _tail_inbox(self, url: str) -> None:
        sqs = boto3.client("sqs")
        assert self.options.on_alert is not None
        while not self._stop_inbox.is_set():
            try:
                messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=1)
            except Exception:  # noqa: BLE001 - the emulator is going away
                return
            for message in messages.get("Messages", []):
                envelope = json.loads(message["Body"])
                try:
                    body = json.loads(envelope.get("Message", "null"))
                except json.JSONDecodeError:
                    body = {"message": envelope.get("Message")}
                self.options.on_alert(str(envelope.get("Subject", "")), body if isinstance(body, dict) else {})
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def _forget_cached_clients() -> None:
    """The shared package caches its DynamoDB resource per process: drop it when the endpoint changes."""
    from replyclock.dal import table

    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()


def configure(stack: LocalStack, brands: Iterable[Brand] = (), sources: Iterable[Source] = ()) -> None:
    """Write brands and sources through the service's own stores, as an operator (or the API) would."""
    from replyclock.dal.brands import BrandStore
    from replyclock.dal.sources import SourceStore

    brand_store, source_store = BrandStore(stack.table_name), SourceStore(stack.table_name)
    for brand in brands:
        brand_store.put(brand)
    for source in sources:
        source_store.put(source)
