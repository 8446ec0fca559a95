"""`replyclock`: run the whole service on this machine, or backtest an export through it.

    replyclock run [--replay FILE [--format twcs|jsonl]] [--port 3000] [--speed 12]
    replyclock replay FILE [--format twcs|jsonl] [--sla-seconds 3600] [--json] [--workers N] [--report HTML]
    replyclock invoke FUNCTION -e events/FILE.json [--table auto|local|moto]
    replyclock demo OUT.jsonl

`run` starts the local stack (devtools.localstack): moto in server mode on 127.0.0.1, the
template's resources, its functions in their own processes, their stream mappings, schedules
and HTTP API. `replay` computes in-process with the functions' own domain modules
(services.backtesting), so no HTTP call or time limit stands between an export and its
figures. Heavy imports happen inside the commands, so that `replyclock --help` is instant.
"""

from __future__ import annotations

import argparse
import json
import math
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from devtools.localstack.console import Console
    from devtools.localstack.dynamodb_local import DynamoDBLocal
    from devtools.localstack.schedules import ScheduleRun
    from devtools.localstack.stack import LocalStack
    from replyclock.models.domain import Brand, Post
    from replyclock.models.sources import Source

SOURCE_ID = "local-replay"
# The function whose schedule moves unanswered waits to at-risk and breached.
SWEEPER = "SweepFunction"
DEFAULT_SLA_SECONDS = 3600
# The API refuses windows longer than this (the MaxWindowDays parameter's MaxValue).
LONGEST_WINDOW_DAYS = 3660


@dataclass(frozen=True)
class Export:
    """An export file, read with the replay connector's own parsers."""

    path: Path
    format: str
    posts: list[Post]
    rejected: int
    # The first few rejected lines' reasons, to show on the console.
    reasons: tuple[str, ...] = ()

    @property
    def brand_ids(self) -> list[str]:
        return sorted({post.brand_id for post in self.posts if post.brand_id})

    @property
    def window(self) -> tuple[datetime, datetime]:
        """Whole UTC hours covering every post: the span a summary of the file must cover."""
        first = min(post.created_at for post in self.posts).replace(minute=0, second=0, microsecond=0)
        last = max(post.created_at for post in self.posts).replace(minute=0, second=0, microsecond=0)
        return first, last + timedelta(hours=1)

    @property
    def window_days(self) -> int:
        first, last = self.window
        return max(1, math.ceil((last - first) / timedelta(days=1)))


def export_format(path: Path, given: str | None) -> str:
    if given:
        return given
    if path.suffix.lower() == ".csv":
        return "twcs"
    if path.suffix.lower() in (".jsonl", ".ndjson"):
        return "jsonl"
    raise SystemExit(f"cannot tell the format of {path}: pass --format twcs or --format jsonl")


# How many rejected lines' reasons the console shows after a replay.
SHOWN_REASONS = 3


def check_export_file(path: Path) -> None:
    """A one-line error (SystemExit) unless `path` is a readable file."""
    if path.is_dir():
        raise SystemExit(f"{path} is a directory, not an export file")
    if not path.is_file():
        raise SystemExit(f"no such file: {path}")
    try:
        with path.open("rb"):
            pass
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror or error}") from None


def read_export(path: Path, given_format: str | None) -> Export:
    from replyclock.connectors.base import Rejected
    from replyclock.connectors.replay import MalformedExport, jsonl_entries, twcs_entries
    from replyclock.models.domain import Post

    check_export_file(path)
    kind = export_format(path, given_format)
    try:
        text = path.read_bytes().decode("utf-8-sig")
        entries = twcs_entries(text) if kind == "twcs" else jsonl_entries(text)
    except UnicodeDecodeError as error:
        raise SystemExit(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except MalformedExport as error:
        raise SystemExit(f"{path} is not a {kind} export: {error}") from None
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror or error}") from None
    posts = [entry for entry in entries if isinstance(entry, Post)]
    if not posts:
        raise SystemExit(f"{path} holds no post the {kind} reader accepts")
    reasons = tuple(
        rejected_reason(entry.item_id, entry.field, entry.reason) for entry in entries if isinstance(entry, Rejected)
    )[:SHOWN_REASONS]
    return Export(path.resolve(), kind, posts, len(entries) - len(posts), reasons)


def rejected_reason(where: object, field: str, reason: str) -> str:
    return f"{where or '?'}: {field}: {' '.join(reason.split())[:160]}"


def rejected_report(count: int, reasons: Iterable[str]) -> str | None:
    """One console line for the rejected lines of an export, with the first reasons; None when there were none."""
    if not count:
        return None
    shown = "; ".join(reasons)
    return f"{count} line(s) rejected" + (f", first: {shown}" if shown else "")


def backtest_brands(brand_ids: list[str], sla_seconds: int) -> list[Brand]:
    """Each brand with one calendar-clock policy of `sla_seconds` for every priority."""
    from replyclock.services.backtesting import uniform_policy_brands

    return uniform_policy_brands(brand_ids, sla_seconds)


def replay_source(export: Export) -> Source:
    from replyclock.models.sources import Source, SourceKind

    return Source(id=SOURCE_ID, kind=SourceKind.REPLAY, replay_uri=str(export.path), replay_format=export.format)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# --- progress ------------------------------------------------------------------------------


def progress_text(stack: LocalStack, total: int, label: str) -> str:
    from devtools.localstack.console import bar

    measuring = stack.post_consumers()
    stored = max((poller.mapping.report.matched for poller in measuring), default=0)
    measured = max((poller.mapping.report.delivered + poller.mapping.report.parked for poller in measuring), default=0)
    later = [poller for poller in stack.pollers.pollers if poller not in measuring]
    aggregated = sum(poller.mapping.report.delivered for poller in later)
    return (
        f"{label} {bar(measured, total)}  {stored}/{total} posts stored · {measured} measured"
        f" · {aggregated} state changes aggregated"
    )


def replay_with_progress(
    stack: LocalStack, console: Console, total: int, label: str, ingest: Callable[[], Any], timeout: float
) -> None:
    """Run `ingest` (in a thread), show progress until it returns and the stream has drained."""
    failure: list[BaseException] = []

    def run() -> None:
        try:
            ingest()
        except BaseException as error:  # noqa: BLE001 - reported by the caller's thread
            failure.append(error)

    thread = threading.Thread(target=run, name="ingest", daemon=True)
    thread.start()
    while thread.is_alive():
        console.progress(progress_text(stack, total, label))
        thread.join(0.2)
    if failure:
        console.end_progress()
        raise failure[0]
    stack.wait_until_drained(timeout, progress=lambda: console.progress(progress_text(stack, total, label)))
    console.end_progress(progress_text(stack, total, label))


def summaries(stack: LocalStack, brand_ids: list[str], window: tuple[datetime, datetime] | None) -> dict[str, Any]:
    """GET /metrics/summary for each brand, through the local HTTP API (the api function)."""
    result = {}
    for brand_id in brand_ids:
        query = {"brand": brand_id}
        if window is not None:
            query.update({"from": iso(window[0]), "to": iso(window[1])})
        status, body = stack.get_json("/metrics/summary", query)
        if status != 200:
            raise RuntimeError(f"GET /metrics/summary?brand={brand_id} answered {status}: {body}")
        result[brand_id] = body
    return result


def print_summary_table(console: Console, summaries_by_brand: dict[str, Any]) -> None:
    from devtools.localstack.console import SUMMARY_COLUMNS, summary_rows, table

    console.print(table(SUMMARY_COLUMNS, summary_rows(summaries_by_brand)))


# --- replyclock run --------------------------------------------------------------------------


class _AlertPrinter:
    """Prints alerts as they are published, at most a few per second (a replay of old data breaches many)."""

    def __init__(self, console: Console, per_second: int = 4) -> None:
        self._console = console
        self._per_second = per_second
        self._window = 0.0
        self._printed = 0
        self._held = 0
        self._lock = threading.Lock()

    def __call__(self, subject: str, body: dict[str, Any]) -> None:
        from devtools.localstack.console import duration

        with self._lock:
            now = time.monotonic()
            if now - self._window >= 1.0:
                if self._held:
                    self._console.print(f"  … and {self._held} more alert(s)")
                self._window, self._printed, self._held = now, 0, 0
            if self._printed >= self._per_second:
                self._held += 1
                return
            self._printed += 1
        waited = duration(body.get("waited_seconds"))
        target = duration(body.get("target_seconds"))
        excerpt = str(body.get("post_excerpt") or "")[:60]
        who = f"@{body['customer']} " if body.get("customer") else ""
        self._console.print(f"ALERT {subject} · {who}waited {waited} of {target} · {excerpt}")


def _schedule_reporter(console: Console) -> Callable[[ScheduleRun], None]:
    def report(run: ScheduleRun) -> None:
        if run.last_error is not None:
            console.print(f"{run.schedule.name} failed: {run.last_error}")
        elif isinstance(run.last_result, dict):
            # The ingest tick answers each poll it made.
            ingested = sum(int(poll.get("ingested") or 0) for poll in run.last_result.get("polls", []))
            if ingested:
                console.print(f"{run.schedule.name}: {ingested} new post(s) stored")

    return report


def _access_logger(console: Console) -> Callable[[str, str, int, float], None]:
    def log(method: str, path: str, status: int, seconds: float) -> None:
        console.print(f"{method} {path} -> {status} ({seconds * 1000:.0f} ms)")

    return log


def _raise_keyboard_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def sweep_after_replay(stack: LocalStack, replay: Callable[[], object]) -> None:
    """Start every schedule but the sweeper's, replay, then start the sweeper's.

    The sweeper judges open waits by the wall clock, and a replay is history: swept while the replay is
    being measured, every wait whose answer is still in the stream would look overdue and alert. So the
    sweeps start once the replay is measured, and judge only the waits the data leaves unanswered.
    """
    held = {SWEEPER}
    stack.start_schedules(stack.scheduled_functions() - held)
    replay()
    stack.start_schedules(held)


def command_run(args: argparse.Namespace) -> int:
    started = time.monotonic()
    data_dir = Path(args.data).resolve() if args.data else None
    if data_dir is not None and args.table == "moto":
        raise SystemExit("--data keeps the table on DynamoDB Local: it cannot be used with --table moto")
    if args.replay:
        check_export_file(Path(args.replay))
    # DynamoDB Local's JVM takes seconds to start: launched first, it starts while the rest is imported and made.
    table_server, fallback_reason = None, None
    log_dir = Path(args.logs) if args.logs else Path(tempfile.mkdtemp(prefix="replyclock-local-"))
    if args.table != "moto":
        from devtools.localstack.emulator import TABLE_FOLDER, launch_dynamodb_local

        try:
            table_server, fallback_reason = launch_dynamodb_local(
                args.table, data_dir / TABLE_FOLDER if data_dir is not None else None, log_dir
            )
        except RuntimeError as error:
            raise SystemExit(f"--table local, which cannot run here: {error}") from None
        if table_server is None and data_dir is not None:
            raise SystemExit(f"--data keeps the table on DynamoDB Local, which cannot run here: {fallback_reason}")
    try:
        return _run_stack(args, started, data_dir, log_dir, table_server, fallback_reason)
    finally:
        if table_server is not None:
            # Stopped with the stack, unless something failed before the stack took it over.
            table_server.stop()


def _run_stack(
    args: argparse.Namespace,
    started: float,
    data_dir: Path | None,
    log_dir: Path,
    table_server: DynamoDBLocal | None,
    fallback_reason: str | None,
) -> int:
    from devtools import demo
    from devtools.localstack.console import Console
    from devtools.localstack.invoke import publish, withdraw
    from devtools.localstack.stack import LocalStack, StackOptions, configure

    console = Console()
    if fallback_reason is not None:
        console.print(f"{fallback_reason}; the table runs on moto instead.")
    overrides: dict[str, str] = {}
    if args.replay:
        export = read_export(Path(args.replay), args.format)
        brands = backtest_brands(export.brand_ids, args.sla_seconds)
        window: tuple[datetime, datetime] | None = export.window
        days = max(export.window_days, math.ceil((datetime.now(UTC) - export.window[0]) / timedelta(days=1)))
        overrides["MaxWindowDays"] = str(min(days, LONGEST_WINDOW_DAYS))
        label = export.path.name
    else:
        dataset = demo.generate()
        brands, window, label = dataset.brands, None, "demo"
        if data_dir is not None:
            # The demo is made relative to now: a restart replays the one it made first.
            kept = data_dir / "demo.jsonl"
            export = read_export(kept if kept.exists() else dataset.write_jsonl(kept), "jsonl")
        else:
            # Written for the ingest function to replay; the CLI counts the posts it made rather than read them back.
            export = Export(dataset.write_jsonl(log_dir / "demo.jsonl").resolve(), "jsonl", dataset.posts, 0)
    options = StackOptions(
        api_port=args.port,
        speed=args.speed,
        parameter_overrides=overrides,
        log_dir=log_dir,
        access_log=_access_logger(console),
        on_schedule_result=_schedule_reporter(console),
        on_alert=_AlertPrinter(console),
        on_poller_error=lambda function, error: console.print(f"stream poller of {function} stopped: {error}"),
        table=args.table,
        data_dir=data_dir,
        table_server=table_server,
    )
    stack = LocalStack(options)
    signal.signal(signal.SIGTERM, _raise_keyboard_interrupt)
    try:
        console.print("Starting ReplyClock locally (no AWS account, no Docker)…")
        stack.start()
        assert stack.log_dir is not None
        publish(stack)
        if data_dir is not None:
            resume_replay_source(stack)
        configure(stack, brands, [replay_source(export)])
        _print_banner(console, stack, export, brands)
        sweep_after_replay(
            stack,
            lambda: replay_with_progress(
                stack, console, len(export.posts), label, lambda: _first_scheduled_ingest(stack), args.timeout
            ),
        )
        console.print(f"Replayed {len(export.posts)} posts in {time.monotonic() - started:.1f} s. Per brand:")
        report = rejected_report(export.rejected, export.reasons)
        if report:
            console.print(report)
        print_summary_table(console, summaries(stack, [brand.id for brand in brands], window))
        console.print(
            "Sweeps keep running: at-risk and breach alerts print below as they happen. Ctrl-C stops everything."
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        console.end_progress()
        console.print("Stopping…")
    finally:
        # A second Ctrl-C (or TERM) would interrupt the stop half-way and leave processes behind; it takes seconds.
        for name in (signal.SIGINT, signal.SIGTERM):
            signal.signal(name, signal.SIG_IGN)
        withdraw()
        stack.stop()
    console.print(f"Stopped. Function logs are in {stack.log_dir}")
    return 0


def resume_replay_source(stack: LocalStack) -> None:
    """After a stop or a crash, the replay source is polled again at once, from its stored cursor.

    A run killed mid-poll leaves the source's lease taken and its next poll claimed for later; only this
    stack uses its data directory, so nobody else holds them, and the new run releases both.
    """
    from replyclock.dal.sources import lease_key, source_key
    from replyclock.dal.table import get_table

    table = get_table(stack.table_name)
    table.delete_item(Key=lease_key(SOURCE_ID))
    if table.get_item(Key=source_key(SOURCE_ID), ConsistentRead=True).get("Item"):
        table.update_item(Key=source_key(SOURCE_ID), UpdateExpression="REMOVE next_poll_at, last_poll_status")


def _first_scheduled_ingest(stack: LocalStack) -> None:
    """Wait for the ingest tick (it fires at start) to finish a complete poll of the replay source."""
    from replyclock.dal.sources import SourceStore

    store = SourceStore(stack.table_name)
    while True:
        found = store.get_configured(SOURCE_ID)
        if found is None:
            raise RuntimeError(f"the source {SOURCE_ID} is not configured")
        if found.schedule.last_poll_status == "failed":
            raise RuntimeError(f"polling {SOURCE_ID} failed: {found.schedule.last_error}")
        if found.schedule.last_poll_status == "completed":
            return
        time.sleep(0.2)


def _print_banner(console: Console, stack: LocalStack, export: Export, brands: list[Brand]) -> None:
    example = brands[0].id if brands else "BRAND"
    schedules = ", ".join(
        f"{run.schedule.name} every {interval:g}s"
        for run in stack.scheduler.runs.values()
        if (interval := stack.scheduler.interval_of(run.schedule)) is not None
    )
    lines = [
        f"  API        {stack.api_url}  e.g. curl '{stack.api_url}/metrics/summary?brand={example}'",
        f"  API docs   {stack.api_url}/docs",
        f"  AWS (moto) {stack.endpoint_url}",
        f"  table      {stack.table_name} on {stack.table_backend} {stack.table_endpoint_url}",
        f"  schedules  {schedules or 'none'}",
        f"  logs       {stack.log_dir}/<Function>.log",
        f"  data       {export.path} ({export.format}, {len(export.posts)} posts, brands: "
        + ", ".join(brand.id for brand in brands[:8])
        + (" …" if len(brands) > 8 else "")
        + ")",
    ]
    if stack.not_emulated:
        kinds = sorted({entry.split("(", 1)[1].rstrip(")") for entry in stack.not_emulated})
        lines.append(f"  not run    {len(stack.not_emulated)} resource(s) of type {', '.join(kinds)}")
    console.print("\n".join(lines))


# --- replyclock replay -----------------------------------------------------------------------


def command_replay(args: argparse.Namespace) -> int:
    """Print each brand's summary over FILE's whole span, computed in-process (services.backtesting).

    The sweeper does not run: a mention the file never answers stays pending rather than
    breached, so `sla` judges the answered waits (and compliance is met / (met + breached)).
    """
    from devtools.localstack.console import Console
    from replyclock.services.backtesting import NotAnExport, backtest_export

    console = Console(sys.stderr)
    started = time.monotonic()
    path = Path(args.file)
    check_export_file(path)
    kind = export_format(path, args.format)
    try:
        outcome = backtest_export(path, kind, args.sla_seconds, workers=args.workers)
    except UnicodeDecodeError as error:
        raise SystemExit(f"{path} is not UTF-8 text ({error.reason} at byte {error.start})") from None
    except NotAnExport as error:
        raise SystemExit(f"{path} is not a {kind} export: {error}") from None
    except OSError as error:
        raise SystemExit(f"cannot read {path}: {error.strerror or error}") from None
    result = outcome.result
    console.print(
        f"{outcome.facts.posts} posts ({outcome.facts.rejected} rejected), {len(result.summaries)} brands,"
        f" {time.monotonic() - started:.1f} s"
    )
    report = rejected_report(outcome.facts.rejected, outcome.facts.reasons)
    if report:
        console.print(report)
    summaries = {brand_id: summary.model_dump(mode="json") for brand_id, summary in result.summaries.items()}
    if args.json:
        for brand_id, summary in summaries.items():
            line = {"brand": brand_id, "summary": summary}
            if brand_id in result.recoveries:
                line["recovery"] = result.recoveries[brand_id].model_dump(mode="json")
            print(json.dumps(line), flush=True)
    else:
        print_summary_table(Console(), summaries)
    if args.report:
        from replyclock.services.backtest_report import write_report

        written = write_report(Path(args.report), outcome, args.sla_seconds, path.name)
        console.print(f"report written to {written}")
    for brand_id, reason in result.failures.items():
        console.print(f"error: could not summarise {brand_id}: {reason}")
    return 4 if result.failures else 0


def command_invoke(args: argparse.Namespace) -> int:
    from devtools.localstack import invoke

    return invoke.command(args.function, args.event, args.table)


def command_demo(args: argparse.Namespace) -> int:
    from devtools import demo

    dataset = demo.generate()
    path = dataset.write_jsonl(Path(args.out))
    print(f"{len(dataset.posts)} posts of {', '.join(b.id for b in dataset.brands)} written to {path}")
    return 0


# --- entry point -------------------------------------------------------------------------------


def _positive_int(text: str) -> int:
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="replyclock", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    run = commands.add_parser("run", help="run the whole service locally (a demo dataset unless --replay)")
    run.add_argument("--replay", metavar="FILE", help="replay this export instead of the demo dataset")
    run.add_argument("--format", choices=("twcs", "jsonl"), help="the export's format (default: from its suffix)")
    run.add_argument("--port", type=int, default=3000, help="HTTP API port on 127.0.0.1 (default 3000, 0: any)")
    run.add_argument("--speed", type=float, default=12.0, help="run rate schedules this many times faster (default 12)")
    run.add_argument(
        "--sla-seconds", type=_positive_int, default=DEFAULT_SLA_SECONDS, help="--replay brands' SLA (default 3600)"
    )
    run.add_argument("--logs", metavar="DIR", help="write function logs here (default: a new temporary directory)")
    run.add_argument("--timeout", type=float, default=900.0, help="longest wait for the replay, in seconds")
    run.add_argument(
        "--table",
        choices=("auto", "local", "moto"),
        default="auto",
        help="where the table runs: DynamoDB Local (local), moto, or DynamoDB Local when Java is here (auto, default)",
    )
    run.add_argument(
        "--data",
        metavar="DIR",
        help="keep the table (DynamoDB Local) and the stream readers' checkpoints here: a restart resumes the replay",
    )
    run.set_defaults(command=command_run)

    replay = commands.add_parser("replay", help="backtest an export: one summary per brand over the file's span")
    replay.add_argument("file", metavar="FILE")
    replay.add_argument("--format", choices=("twcs", "jsonl"), help="the export's format (default: from its suffix)")
    replay.add_argument(
        "--sla-seconds",
        type=_positive_int,
        default=DEFAULT_SLA_SECONDS,
        help="every brand's target for every priority, calendar clock (default 3600)",
    )
    replay.add_argument("--json", action="store_true", help='one JSON line per brand: {"brand", "summary"}')
    replay.add_argument(
        "--report", metavar="HTML", help="also write a self-contained HTML report (figures, distribution, heat map)"
    )
    replay.add_argument(
        "--workers", type=_positive_int, default=1, help="processes to fold conversations in (default 1)"
    )
    replay.set_defaults(command=command_replay)

    invoke = commands.add_parser(
        "invoke", help="run one function with an event, as `sam local invoke FUNCTION -e EVENT` does (no Docker)"
    )
    invoke.add_argument("function", metavar="FUNCTION", help="its logical id in template.yaml, e.g. IngestFunction")
    invoke.add_argument("-e", "--event", required=True, metavar="FILE", help="the event (JSON; - reads stdin)")
    invoke.add_argument(
        "--table",
        choices=("auto", "local", "moto"),
        default="auto",
        help="without a running `replyclock run`: where the fresh stack's table runs (default auto)",
    )
    invoke.set_defaults(command=command_invoke)

    demo = commands.add_parser("demo", help="write the demo dataset as JSONL")
    demo.add_argument("out", metavar="OUT")
    demo.set_defaults(command=command_demo)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command: Callable[[argparse.Namespace], int] = args.command
    return command(args)


if __name__ == "__main__":
    sys.exit(main())
