"""python -m benchmarks [name [options]]: one benchmark, or every one with its defaults (what `make bench` runs)."""

from __future__ import annotations

import importlib
import os
import sys

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
}
# api_summary first: its last line is the summary's cost.
BENCHMARKS = ("api_summary", "accuracy", "cold_start", "measuring", "ingest")


def main(argv: list[str]) -> None:
    for name, value in ENVIRONMENT.items():
        os.environ.setdefault(name, value)
    if argv and argv[0] not in BENCHMARKS:
        sys.exit(f"unknown benchmark {argv[0]!r}; known: {', '.join(BENCHMARKS)}")
    chosen = [(argv[0], argv[1:])] if argv else [(name, []) for name in BENCHMARKS]
    for name, options in chosen:
        print(f"== {name}", flush=True)
        importlib.import_module(f"benchmarks.{name}").main(options)


if __name__ == "__main__":
    main(sys.argv[1:])
