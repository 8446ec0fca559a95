"""`python -m benchmarks.recovery` (the tables of docs/insights.md, "Recovery") on a twcs export written here."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from benchmarks import recovery

HEADER = ["tweet_id", "author_id", "inbound", "created_at", "text", "response_tweet_id", "in_response_to_tweet_id"]
# alice (negative) is answered in 5 minutes and thanks them; bob (negative) is answered after 2 hours and never
# posts again; carol (happy) is answered and replies neutrally.
ROWS = [
    ["1", "alice", "True", "Tue Oct 31 10:00:00 +0000 2017", "@acme my order is lost, this is awful", "2", ""],
    ["2", "acme", "False", "Tue Oct 31 10:05:00 +0000 2017", "@alice sorry! a new one ships today", "3", "1"],
    ["3", "alice", "True", "Tue Oct 31 10:06:00 +0000 2017", "@acme thank you, that is great!", "", "2"],
    ["4", "bob", "True", "Tue Oct 31 11:00:00 +0000 2017", "@acme worst service ever, I am angry", "5", ""],
    ["5", "acme", "False", "Tue Oct 31 13:00:00 +0000 2017", "@bob refund issued", "", "4"],
    ["6", "carol", "True", "Tue Oct 31 12:00:00 +0000 2017", "@acme love the new app", "7", ""],
    ["7", "acme", "False", "Tue Oct 31 12:01:00 +0000 2017", "@carol glad you like it", "8", "6"],
    ["8", "carol", "True", "Tue Oct 31 12:02:00 +0000 2017", "@acme order 12345", "", "7"],
]


@pytest.fixture
def export(tmp_path: Path) -> Path:
    path = tmp_path / "twcs.csv"
    with path.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(HEADER)
        writer.writerows(ROWS)
    return path


def test_the_json_figures_are_the_backtests_counted_by_hand(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recovery.main([str(export), "--json"])
    figures = json.loads(capsys.readouterr().out)

    everyone = figures["all_brands"]
    assert (everyone["negative"], everyone["followed_up"], everyone["recovered"], everyone["no_follow_up"]) == (
        2,
        1,
        1,
        1,
    )
    bands = figures["by_response_band"]
    assert (bands["under_15m"]["recovered"], bands["under_15m"]["recovery_rate"]) == (1, 1.0)
    assert (bands["1h_to_4h"]["negative"], bands["1h_to_4h"]["no_follow_up"]) == (1, 1)
    assert figures["brands"]["acme"]["negative"] == 2
    # alice's thanks (positive) after a negative post; carol's order number (neutral) after a happy one
    assert figures["follow_ups"]["negative before"] == {"positive": 1}
    assert figures["follow_ups"]["not negative before"] == {"neutral": 1}
    assert figures["follow_ups"]["answered"] == {"waits": 3}


def test_the_tables_print_every_band(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    recovery.main([str(export)])
    printed = capsys.readouterr().out

    assert "| acme | 2 | 1 | 1 | 1 | 100.0% |" in printed
    for band in ("under_15m", "15m_to_1h", "1h_to_4h", "over_4h"):
        assert f"| {band} |" in printed
    assert "answered waits: 3, of which negative before the answer: 2" in printed


def test_a_wilson_interval_holds_the_share_and_stays_within_0_and_1() -> None:
    assert recovery.wilson(0, 0) is None
    low, high = recovery.wilson(8, 17) or (0.0, 0.0)
    assert low < 8 / 17 < high
    assert (round(low, 2), round(high, 2)) == (0.26, 0.69)
    assert recovery.wilson(10, 10) == (pytest.approx(0.722, abs=1e-3), 1.0)
    assert recovery.wilson(0, 10) == (0.0, pytest.approx(0.278, abs=1e-3))


def test_replay_json_lines_carry_each_brands_recovery(export: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from devtools.cli import main

    assert main(["replay", str(export), "--json"]) == 0
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if text.startswith("{")]

    assert line["brand"] == "acme"
    assert (line["recovery"]["negative"], line["recovery"]["recovered"], line["recovery"]["recovery_rate"]) == (
        2,
        1,
        1.0,
    )
    assert [band["response_band"] for band in line["recovery"]["by_response_band"]] == [
        "under_15m",
        "15m_to_1h",
        "1h_to_4h",
        "over_4h",
    ]
