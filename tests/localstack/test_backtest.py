"""`replyclock replay FILE --json` backtests a real export through the local stack and prints exact figures."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest

from tests.support.twcs_oracle import exact_first_waits, nearest_rank

SAMPLE = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "twcs_kaggle_sample.csv"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.slow,
    pytest.mark.skipif(not SAMPLE.exists(), reason=f"real twcs sample not found at {SAMPLE} (../shared/datasets)"),
]


def test_each_brand_s_summary_matches_an_exact_computation_from_the_csv(tmp_path: Path) -> None:
    # Given the Kaggle twcs sample, backtested with a 30-minute SLA
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "devtools.cli",
            "replay",
            str(SAMPLE),
            "--format",
            "twcs",
            "--sla-seconds",
            "1800",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=tmp_path,
    )
    assert completed.returncode == 0, completed.stderr[-3000:]

    # Then stdout is one JSON line per brand (the file's non-inbound authors), nothing else
    lines = [json.loads(line) for line in completed.stdout.splitlines()]
    summaries = {line["brand"]: line["summary"] for line in lines}
    exact = exact_first_waits(SAMPLE)
    assert set(exact) <= set(summaries)
    assert list(summaries) == sorted(summaries)

    # And each brand's first waits (mentions), answers and p50/p90 are the exact ones
    for brand, summary in summaries.items():
        expected = exact.get(brand, [])
        answered = [latency for latency in expected if latency is not None]
        assert (summary["mentions"], summary["responded"]) == (len(expected), len(answered)), brand
        for name, q in (("p50", 0.5), ("p90", 0.9)):
            measured = summary["first_response_seconds"][name]
            if not answered:
                assert measured is None, brand
            else:
                assert measured == pytest.approx(nearest_rank(answered, q), rel=0.01, abs=0.5), (brand, name)
        # The SLA of 1800 s, on the calendar clock, judges every answered first wait
        met = sum(latency <= 1800 for latency in answered)
        assert (summary["sla"]["met"], summary["sla"]["breached"]) == (met, len(answered) - met), brand
        # Over the file's whole span
        first, last = file_span(SAMPLE)
        assert datetime.fromisoformat(summary["window"]["from"]) <= first
        assert datetime.fromisoformat(summary["window"]["to"]) > last


def file_span(path: Path) -> tuple[datetime, datetime]:
    with path.open(newline="", encoding="utf-8") as handle:
        times = [datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y") for row in csv.DictReader(handle)]
    return min(times), max(times)
