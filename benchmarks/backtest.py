"""The backtest at scale: a generated twcs-shaped export of N posts through `replyclock replay`, time and memory.

    python -m benchmarks backtest [--posts 1000000] [--workers 1,2]

The generator writes what the Kaggle twcs CSV holds: customers' mentions of ~80 brands over a
year, brand answers after log-normal delays (some never), customers' follow-ups and the brand's
next answers, with response_tweet_id / in_response_to_tweet_id links. The backtest runs as a
subprocess, as a user runs it, so its peak resident memory is its own.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

START = datetime(2016, 11, 1, tzinfo=UTC)
SPAN = timedelta(days=365)
BRANDS = [f"Brand{n:02d}Help" for n in range(80)]
COLUMNS = ("tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id")


def generate(path: Path, posts: int, seed: int = 11) -> int:
    """Write a twcs CSV of about `posts` rows; returns how many."""
    rng = random.Random(seed)
    written = 0
    next_id = 1
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(COLUMNS)
        while written < posts:
            brand = BRANDS[min(int(rng.paretovariate(1.2)) - 1, len(BRANDS) - 1)]
            customer = f"{rng.randrange(10**6, 10**7)}"
            at = START + timedelta(seconds=rng.uniform(0, SPAN.total_seconds()))
            thread: list[tuple[int, str, bool, datetime, str, int | None]] = []
            parent: int | None = None
            for turn in range(rng.choice((1, 2, 2, 3, 4))):
                thread.append((next_id, customer, True, at, f"@{brand} my order is late again #{turn}", parent))
                parent, next_id = next_id, next_id + 1
                if rng.random() < 0.15:
                    break  # never answered
                at += timedelta(seconds=rng.lognormvariate(7.0, 1.4))
                thread.append((next_id, brand, False, at, f"@{customer} sorry, please DM us", parent))
                parent, next_id = next_id, next_id + 1
                at += timedelta(seconds=rng.lognormvariate(6.0, 1.0))
            answers = {row[5]: row[0] for row in thread if row[5] is not None}
            for tweet_id, author, inbound, moment, text, replied_to in thread:
                writer.writerow(
                    (
                        tweet_id,
                        author,
                        inbound,
                        moment.strftime("%a %b %d %H:%M:%S +0000 %Y"),
                        text,
                        answers.get(tweet_id, ""),
                        replied_to if replied_to is not None else "",
                    )
                )
            written += len(thread)
    return written


def run_backtest(path: Path, workers: int) -> dict[str, Any]:
    started = time.perf_counter()
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    completed = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "replay", str(path), "--json", "--workers", str(workers)],
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - started
    if completed.returncode != 0:
        raise SystemExit(f"replay failed ({completed.returncode}): {completed.stderr[-2000:]}")
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    brands = [json.loads(line) for line in completed.stdout.splitlines()]
    return {
        "workers": workers,
        "seconds": seconds,
        # The largest resident set of any process the backtest ran (it, or one of its workers), in MB.
        "peak_resident_mb": max(peak, before) / 1024,
        "brands": len(brands),
        "mentions": sum(line["summary"]["mentions"] for line in brands),
    }


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks backtest")
    parser.add_argument("--posts", type=int, default=1_000_000)
    parser.add_argument("--workers", default="1,2", help="comma-separated worker counts to time")
    options = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch) / "generated_twcs.csv"
        started = time.perf_counter()
        rows = generate(path, options.posts)
        print(
            f"generated {rows:,} twcs rows ({path.stat().st_size / 1e6:,.0f} MB) over {SPAN.days} days"
            f" in {time.perf_counter() - started:.0f} s"
        )
        print("`replyclock replay FILE --json --workers K` (targets: <= 120 s, <= 1 GB resident):")
        for workers in (int(value) for value in options.workers.split(",")):
            row = run_backtest(path, workers)
            print(
                f"  workers {row['workers']}: {row['seconds']:,.1f} s, peak resident {row['peak_resident_mb']:,.0f} MB,"
                f" {row['brands']} brands, {row['mentions']:,} mentions"
            )


if __name__ == "__main__":
    main(sys.argv[1:])
