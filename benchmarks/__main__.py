"""python -m benchmarks [name [options]]: one benchmark, or every one with its defaults (what `make bench` runs).

Run whole, it also writes docs/benchmarks.md and docs/benchmarks.json from that one run.
"""

from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import platform
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

# Benchmarks never reach AWS. Set before any benchmark imports boto3 (`make bench` sets the credentials too).
ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
    "TABLE_NAME": "replyclock-bench",
    "ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:replyclock-alerts",
    "POWERTOOLS_SERVICE_NAME": "replyclock",
    "POWERTOOLS_METRICS_NAMESPACE": "ReplyClock",
    "POWERTOOLS_TRACE_DISABLED": "true",
    "POWERTOOLS_METRICS_DISABLED": "true",
}
# What `make bench` runs, in this order.
BENCHMARKS = ("api_summary", "accuracy", "cold_start", "measuring", "thread_length", "ingest", "backtest")
# Runnable by name, not part of `make bench`: api_rollups (hourly buckets alone vs daily roll-ups, ~3 minutes)
# measured the decision recorded in docs/design-decisions.md; eta (the live wait estimate's backtest on a twcs
# export, a few seconds) measured the one in docs/insights.md, "Live wait estimate"; run_start (`make run`'s
# seconds to its first non-empty summary, idle or loaded, ~1 minute) is recorded in docs/local-stack.md.
# surges (surge detection on a twcs export with injected spikes, ~15 s) measured docs/insights.md, "Surges".
OPTIONAL = ("api_rollups", "eta", "run_start", "surges")
DOCS = Path(__file__).resolve().parent.parent / "docs"
TITLES = {
    "api_summary": "Summary API cost by window length (1-365 days) and post count (10k, 100k, 1M)",
    "accuracy": "Histogram accuracy on 1,000,000 lognormal latencies",
    "cold_start": "Cold start: handler import time and layer size",
    "measuring": "Measuring path throughput and DynamoDB cost per post",
    "thread_length": "Measuring cost against thread length (10 to 20,000 posts); the twcs head live and as a backfill",
    "ingest": "Ingest: posts per second parsed and written, per connector",
    "backtest": "Backtest (`make replay`) of a generated 1,000,000-post twcs export: time and peak memory",
}


class _Tee(io.TextIOBase):
    """Prints as it goes and keeps a copy for the report."""

    def __init__(self, target: Any) -> None:
        self.target = target
        self.copy = io.StringIO()

    def write(self, text: str) -> int:
        self.target.write(text)
        self.target.flush()
        return self.copy.write(text)


def _run(name: str, options: list[str]) -> dict[str, Any]:
    module = importlib.import_module(f"benchmarks.{name}")
    tee = _Tee(sys.stdout)
    started = time.perf_counter()
    with contextlib.redirect_stdout(tee):
        module.main(options)
    # Handlers print structured logs and EMF lines; the report keeps the benchmark's own lines.
    output = "\n".join(line for line in tee.copy.getvalue().splitlines() if not line.startswith("{"))
    return {"command": f"python -m benchmarks {name}", "seconds": time.perf_counter() - started, "output": output}


def write_report(results: dict[str, dict[str, Any]]) -> None:
    machine = f"{platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    lines = [
        "# Benchmarks",
        "",
        f"Written by `make bench` (`python -m benchmarks`) on {datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {machine};",
        f"the whole run took {sum(result['seconds'] for result in results.values()):.0f} s.",
        "Everything runs in-process against moto, so absolute times measure this machine and moto;",
        "the counts (items, requests, write units) are what DynamoDB would bill.",
        "",
    ]
    for name, result in results.items():
        lines += [
            f"## {TITLES.get(name, name)}",
            "",
            f"Command: `{result['command']}` ({result['seconds']:.0f} s)",
            "",
            "```",
            result["output"].rstrip(),
            "```",
            "",
        ]
    (DOCS / "benchmarks.md").write_text("\n".join(lines))
    (DOCS / "benchmarks.json").write_text(json.dumps(results, indent=2) + "\n")


def main(argv: list[str]) -> None:
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if argv and argv[0] not in BENCHMARKS + OPTIONAL:
        sys.exit(f"unknown benchmark {argv[0]!r}; known: {', '.join(BENCHMARKS + OPTIONAL)}")
    if argv:
        importlib.import_module(f"benchmarks.{argv[0]}").main(argv[1:])
        return
    results = {}
    for name in BENCHMARKS:
        print(f"== {name}", flush=True)
        results[name] = _run(name, [])
    write_report(results)
    print(f"wrote {DOCS / 'benchmarks.md'} and {DOCS / 'benchmarks.json'}")


if __name__ == "__main__":
    main(sys.argv[1:])
