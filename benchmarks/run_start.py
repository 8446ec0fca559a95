"""`make run`'s start: seconds from launching `replyclock run` to its first non-empty summary.

    python -m benchmarks run_start [--runs 3] [--load 0] [--table auto] [--speed 12]

Each run starts `replyclock run` (the demo dataset, on a free port) as `make run` does, once
set up (the venv and DynamoDB Local installed), polls GET /metrics/summary?brand=acme every
0.1 s until it counts a mention, then stops the CLI with SIGINT (Ctrl-C) and waits for it.
The CLI's own lines are timestamped too, to show where the time goes. `--load N` keeps N
busy-looping processes running meanwhile, to measure a loaded machine.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from contextlib import ExitStack
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
BRAND = "acme"
# The CLI's lines that mark a stage of the start, as it prints them.
MILESTONES = {"Starting ReplyClock": "CLI up", "  API ": "stack up (banner)", "Replayed ": "replay done"}


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _mentions(url: str) -> int | None:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return int(json.loads(response.read()).get("mentions") or 0)
    except (OSError, ValueError, urllib.error.HTTPError):
        return None


def one_run(table: str, speed: float, timeout: float) -> tuple[dict[str, float], str]:
    """Seconds from launch to each milestone and to the first non-empty summary; where the table ran."""
    port = _free_port()
    command = [sys.executable, "-m", "devtools.cli", "run", "--port", str(port), "--table", table]
    command += ["--speed", str(speed)]
    started = time.monotonic()
    # Announced to `replyclock invoke` in a file of its own, not over a `make run` that may be running.
    running_file = Path(tempfile.gettempdir()) / f"replyclock-run-start-{os.getpid()}.json"
    process = subprocess.Popen(
        command,
        cwd=REPO_ROOT,
        env={**os.environ, "REPLYCLOCK_RUNNING_FILE": str(running_file)},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,
    )
    seen: dict[str, float] = {}
    table_on: list[str] = []

    def watch_output() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            if line.startswith("  table "):
                table_on.append("DynamoDB Local" if " on DynamoDB Local " in line else "moto")
            for prefix, name in MILESTONES.items():
                if line.startswith(prefix) and name not in seen:
                    seen[name] = time.monotonic() - started

    reader = threading.Thread(target=watch_output, daemon=True)
    reader.start()
    url = f"http://127.0.0.1:{port}/metrics/summary?brand={BRAND}"
    try:
        while time.monotonic() - started < timeout:
            if process.poll() is not None:
                raise SystemExit(f"replyclock run exited with status {process.returncode} before any summary")
            if (_mentions(url) or 0) > 0:
                seen["first non-empty summary"] = time.monotonic() - started
                break
            time.sleep(0.1)
        else:
            raise SystemExit(f"no non-empty summary within {timeout:.0f} s")
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        reader.join(5)
    return seen, table_on[0] if table_on else "?"


def _busy_loops(count: int, stack: ExitStack) -> None:
    for _ in range(count):
        loop = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        stack.callback(loop.wait)
        stack.callback(loop.kill)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks run_start")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--load", type=int, default=0, help="busy-looping processes kept running meanwhile")
    parser.add_argument("--table", choices=("auto", "local", "moto"), default="auto")
    parser.add_argument("--speed", type=float, default=12.0, help="as replyclock run --speed (make run: 12)")
    parser.add_argument("--timeout", type=float, default=120.0)
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    print(f"replyclock run --table {args.table}, {args.runs} runs, {args.load} busy loops, load before {load:.1f}")
    firsts = []
    with ExitStack() as stack:
        _busy_loops(args.load, stack)
        for number in range(1, args.runs + 1):
            seen, table_on = one_run(args.table, args.speed, args.timeout)
            firsts.append(seen["first non-empty summary"])
            stages = ", ".join(f"{name} {seconds:.1f} s" for name, seconds in sorted(seen.items(), key=lambda x: x[1]))
            print(f"  run {number} (table on {table_on}): {stages}", flush=True)
    print(
        f"first non-empty summary: median {statistics.median(firsts):.1f} s, "
        f"min {min(firsts):.1f} s, max {max(firsts):.1f} s"
    )
