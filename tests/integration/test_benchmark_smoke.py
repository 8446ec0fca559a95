"""`make bench` must not rot between runs: its summary benchmark, small, in a process of its own.

The benchmark asserts on its own (served pages answer as moto does; every window's mentions equal
the simulated first waits), so a clean exit is the check. (The saturated-bucket ceiling takes ~10 s a
request, so it is left to `make bench`.)
"""

from __future__ import annotations

import os
import subprocess
import sys

from devtools.localstack.template import REPO_ROOT


def test_the_summary_benchmark_runs_and_checks_its_answers_on_a_small_dataset() -> None:
    environment = {**os.environ, "PYTHONPATH": f"{REPO_ROOT}{os.pathsep}{REPO_ROOT / 'layers' / 'common'}"}
    completed = subprocess.run(
        [sys.executable, "-m", "benchmarks", "api_summary", "--posts", "2000,4000", "--windows", "1,7"]
        + ["--runs", "1", "--saturated-windows", "", "--uncompacted-window", "7"],
        cwd=REPO_ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "served Query pages answer as moto does" in completed.stdout
    assert "never compacted, 7 d, 2,000 -> 4,000 posts" in completed.stdout
