"""`replyclock run --data DIR` killed with -9 mid-replay, then started again, ends with a clean run's figures."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import demo
from devtools.cli import iso, read_export
from devtools.localstack.dynamodb_local import free_port, unavailable
from replyclock.services.backtesting import backtest_export

NOT_HERE = unavailable()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(NOT_HERE is not None, reason=f"DynamoDB Local cannot run here: {NOT_HERE}"),
]
SLA_SECONDS = 3600
POSTS = 300


class Run:
    """One `replyclock run` in its own session, its output collected in a file."""

    def __init__(self, export: Path, data: Path, port: int, out: Path) -> None:
        self.out = out
        with out.open("wb") as sink:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "devtools.cli", "run", "--replay", str(export), "--data", str(data)]
                + ["--port", str(port), "--sla-seconds", str(SLA_SECONDS), "--speed", "1"],
                stdout=sink,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                # Announced to `replyclock invoke` in this test's folder, not where a `make run` or another
                # test process announces its own.
                env={**os.environ, "REPLYCLOCK_RUNNING_FILE": str(out.parent / "running.json")},
            )

    def text(self) -> str:
        return self.out.read_text(errors="replace").replace("\r", "\n")

    def wait_for(self, pattern: str, timeout: float) -> re.Match[str]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(pattern, self.text())
            if found:
                return found
            assert self.process.poll() is None, self.text()[-3000:]
            time.sleep(0.05)
        raise AssertionError(f"no {pattern!r} within {timeout} s:\n{self.text()[-3000:]}")

    def end(self, how: signal.Signals) -> None:
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(60)


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.end(signal.SIGKILL)


def summaries(port: int, brands: list[str], export: Path) -> dict[str, dict[str, Any]]:
    start, end = read_export(export, "jsonl").window
    result = {}
    for brand in brands:
        url = f"http://127.0.0.1:{port}/metrics/summary?brand={brand}&from={iso(start)}&to={iso(end)}"
        with urllib.request.urlopen(url, timeout=60) as response:
            result[brand] = json.loads(response.read())
    return result


def test_a_run_killed_mid_replay_resumes_from_its_data_and_ends_with_a_clean_run_s_figures(
    tmp_path: Path, runs: list[Run]
) -> None:
    # Given an export (the first POSTS lines of the demo dataset) and a data directory
    full = demo.generate().write_jsonl(tmp_path / "full.jsonl")
    export = tmp_path / "export.jsonl"
    export.write_text("".join(full.read_text().splitlines(keepends=True)[:POSTS]))
    data = tmp_path / "data"

    # When a run is killed with -9 once it has measured some of the posts but not all
    port = free_port()
    first = Run(export, data, port, tmp_path / "first.out")
    runs.append(first)
    first.wait_for(r"[1-9]\d* measured", timeout=120)
    assert "Replayed" not in first.text()
    first.end(signal.SIGKILL)
    assert (data / "dynamodb").is_dir() and any((data / "checkpoints").iterdir())

    # and started again on the same data
    second = Run(export, data, port, tmp_path / "second.out")
    runs.append(second)
    second.wait_for(r"Per brand", timeout=180)

    # Then its figures are those of a clean computation of the file (the backtest; its equality with
    # a clean local-stack run is tested in tests/localstack/test_local_stack.py), for the fields the
    # sweeper does not move (it marks overdue pending waits breached)
    expected = backtest_export(export, "jsonl", SLA_SECONDS).result.summaries
    got = summaries(port, sorted(expected), export)
    for brand, summary in expected.items():
        clean = summary.model_dump(mode="json")
        for field in ("mentions", "responded", "first_response_seconds", "next_response_seconds"):
            assert got[brand][field] == clean[field], (brand, field)
        assert got[brand]["sla"]["met"] == clean["sla"]["met"], brand

    # and a stop interrupted by a second signal still ends cleanly, with nothing of either run left running
    second.process.send_signal(signal.SIGTERM)
    second.wait_for("Stopping…", timeout=30)
    second.end(signal.SIGINT)
    assert second.process.returncode == 0, second.text()[-2000:]
    assert "Traceback" not in second.text() and "Stopped." in second.text()
    deadline = time.monotonic() + 15
    while leftovers := leftover_processes(data):
        assert time.monotonic() < deadline, leftovers
        time.sleep(0.2)


def leftover_processes(data: Path) -> list[int]:
    found = subprocess.run(["pgrep", "-f", str(data)], capture_output=True, text=True).stdout.split()
    return [int(pid) for pid in found if int(pid) != os.getpid()]
