"""The backtest (`make replay`): every brand of a real export over its whole span, in-process, exact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.cli import backtest_brands, read_export
from devtools.template import REPO_ROOT
from replyclock.logic.metrics import TimeWindow
from replyclock.services.backtesting import backtest, shares
from tests.integration.test_real_twcs_data import DATASET, exact_first_waits, nearest_rank

NEEDS_DATASET = pytest.mark.skipif(
    not DATASET.exists(), reason=f"real twcs data not found at {DATASET} (../shared/datasets)"
)
SLA = 3600


@NEEDS_DATASET
def test_every_brand_over_the_whole_span_equals_an_exact_computation_from_the_csv() -> None:
    # Given twcs_head5000.csv, whose posts span 2,288 days
    export = read_export(DATASET, "twcs")
    window = TimeWindow(*export.window)
    assert window.hours // 24 >= 2288

    # When it is backtested with a one-hour SLA
    result = backtest(export.posts, backtest_brands(export.brand_ids, SLA), window)

    # Then every brand is summarised, and its first waits equal the test's own computation
    exact = exact_first_waits(DATASET)
    assert result.failures == {}
    assert set(result.summaries) == set(export.brand_ids) >= set(exact)
    for brand_id, summary in result.summaries.items():
        expected = exact.get(brand_id, [])
        answered = [latency for latency in expected if latency is not None]
        assert (summary.mentions, summary.responded) == (len(expected), len(answered)), brand_id
        met = sum(latency <= SLA for latency in answered)
        assert (summary.sla.met, summary.sla.breached) == (met, len(answered) - met), brand_id
        for name, q in (("p50", 0.5), ("p90", 0.9)):
            measured = getattr(summary.first_response_seconds, name)
            if answered:
                assert measured == pytest.approx(nearest_rank(answered, q), rel=0.01, abs=0.5), (brand_id, name)
            else:
                assert measured is None, brand_id


@NEEDS_DATASET
@pytest.mark.parametrize("workers", [2, 3])
def test_splitting_the_conversations_among_workers_gives_the_same_summaries(workers: int) -> None:
    export = read_export(DATASET, "twcs")
    brands = backtest_brands(export.brand_ids, SLA)
    window = TimeWindow(*export.window)

    alone = backtest(export.posts, brands, window)
    split = backtest(export.posts, brands, window, workers=workers)

    assert split.summaries == alone.summaries


@NEEDS_DATASET
def test_shares_keep_each_conversation_whole() -> None:
    posts = read_export(DATASET, "twcs").posts

    parts = shares(posts, 4)

    assert sum(len(part) for part in parts) == len(posts)
    owner = {(post.channel, post.conversation_id): n for n, part in enumerate(parts) for post in part}
    assert all(owner[(post.channel, post.conversation_id)] == n for n, part in enumerate(parts) for post in part)


def test_a_file_that_is_not_an_export_is_one_line_and_a_non_zero_exit(tmp_path: Path) -> None:
    bad = tmp_path / "export.csv"
    bad.write_text("just,some,columns\n1,2,3\n")

    completed = subprocess.run(
        [sys.executable, "-m", "devtools.cli", "replay", str(bad), "--json"],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
    )

    assert completed.returncode != 0 and completed.stdout == ""
    assert len(completed.stderr.strip().splitlines()) == 1 and "Traceback" not in completed.stderr
