"""The backtest (`make replay`): every brand of a real export over its whole span, in-process, exact."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from devtools.localstack.template import REPO_ROOT
from replyclock.services.backtesting import backtest_export
from tests.support.builders import brand, customer
from tests.support.twcs_oracle import DATASET, exact_first_waits, nearest_rank

NEEDS_DATASET = pytest.mark.skipif(
    not DATASET.exists(), reason=f"real twcs data not found at {DATASET} (../shared/datasets)"
)
SLA = 3600


@NEEDS_DATASET
def test_every_brand_over_the_whole_span_equals_an_exact_computation_from_the_csv() -> None:
    # Given twcs_head5000.csv, whose posts span 2,288 days, backtested with a one-hour SLA
    outcome = backtest_export(DATASET, "twcs", SLA)
    result = outcome.result
    assert outcome.facts.window.hours // 24 >= 2288

    # Then every brand is summarised, and its first waits equal the test's own computation
    exact = exact_first_waits(DATASET)
    assert result.failures == {}
    assert set(result.summaries) == outcome.facts.brand_ids >= set(exact)
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
    alone = backtest_export(DATASET, "twcs", SLA).result
    split = backtest_export(DATASET, "twcs", SLA, workers=workers).result

    assert split.summaries == alone.summaries


@NEEDS_DATASET
def test_small_partitions_give_the_same_summaries(monkeypatch: pytest.MonkeyPatch) -> None:
    whole = backtest_export(DATASET, "twcs", SLA).result
    monkeypatch.setattr("replyclock.services.backtesting.PARTITION_POSTS", 100)

    assert backtest_export(DATASET, "twcs", SLA).result.summaries == whole.summaries


def test_a_jsonl_export_honours_delete_lines_and_counts_bad_lines(tmp_path: Path) -> None:
    # Given a JSONL export: alice answered after 10 minutes, bob after 30, whose answer was then deleted
    posts = [
        customer("1", 0, conversation="1"),
        brand("2", 10, reply_to="1", conversation="1"),
        customer("3", 0, "@acme hello?", conversation="3", author="bob"),
        brand("4", 30, "@bob here", reply_to="3", conversation="3"),
    ]
    lines = [post.model_dump_json(exclude={"conversation_id"}) for post in posts]
    lines += ['{"delete": {"channel": "x", "id": "4"}}', "not json", '{"id": 5}']
    export = tmp_path / "export.jsonl"
    export.write_text("\n".join(lines) + "\n")

    # When it is backtested
    outcome = backtest_export(export, "jsonl", 1200)

    # Then bob still waits, alice's answer counts, and the two bad lines are counted
    summary = outcome.result.summaries["acme"]
    assert (summary.mentions, summary.responded, summary.sla.met) == (2, 1, 1)
    assert summary.first_response_seconds.p50 == pytest.approx(600, rel=0.01)
    assert outcome.facts.rejected == 2


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
