"""The backtest report (`replyclock replay --report`), opened from disk in headless Chromium.

It must load with no console error and no request at all besides the file itself, and show, per
brand, the figures `replay --json` prints and a distribution that accounts for every answered wait.
"""

from __future__ import annotations

import json
import urllib.parse
from pathlib import Path
from typing import Any

import pytest

from devtools import demo
from devtools.cli import main
from tests.browser.conftest import Watched

SLA_SECONDS = 3600
SHOWN = "nodes => Object.fromEntries(nodes.map(n => [n.dataset.metric, n.dataset.value]))"


def as_shown(value: Any) -> str:
    """A figure as the page holds it in data-value: JavaScript's number text (1.0 is "1"), "" for null."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def test_the_report_opens_from_disk_and_shows_the_backtest_s_figures(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], watched: Watched, screenshots: Path
) -> None:
    export = demo.generate().write_jsonl(tmp_path / "demo.jsonl")
    report = tmp_path / "report.html"
    assert main(["replay", str(export), "--sla-seconds", str(SLA_SECONDS), "--json", "--report", str(report)]) == 0
    printed = {line["brand"]: line["summary"] for line in map(json.loads, capsys.readouterr().out.splitlines())}

    page = watched.page
    page.goto(report.as_uri())
    page.wait_for_selector("body[data-ready=true]", timeout=30_000)
    print(f"report: {report.stat().st_size} bytes in one file")

    assert set(page.eval_on_selector_all("section[data-brand]", "s => s.map(n => n.dataset.brand)")) == set(printed)
    for brand, summary in printed.items():
        section = f'section[data-brand="{brand}"]'
        figures = page.eval_on_selector_all(f"{section} [data-metric]", SHOWN)
        assert figures["mentions"] == as_shown(summary["mentions"])
        assert figures["responded"] == as_shown(summary["responded"])
        assert figures["response_rate"] == as_shown(summary["response_rate"])
        assert figures["compliance"] == as_shown(summary["sla"]["compliance"])
        assert figures["first_p50"] == as_shown(summary["first_response_seconds"]["p50"])
        assert figures["first_p90"] == as_shown(summary["first_response_seconds"]["p90"])
        counts = page.get_attribute(f"{section} .distribution", "data-counts")
        assert counts is not None and sum(map(int, counts.split(","))) == summary["responded"]
        assert page.locator(f"{section} .heat svg rect").count() == 7 * 24
        assert int(page.get_attribute(f"{section} .heat", "data-cells") or 0) > 0
    path = screenshots / "report.png"
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")

    assert not watched.errors, watched.errors
    assert {urllib.parse.urlsplit(url).scheme for url in watched.requests} == {"file"}
    assert len(watched.requests) == 1, watched.requests
