"""Backtest of the live wait estimate on a twcs export: `python -m benchmarks eta [FILE] [--json]`.

Each first wait is predicted at its start from what the table held then (services.estimating) and
compared with the actual first response; against the baseline "median first response of the trailing
7 days". The table it prints is the one in docs/insights.md ("Live wait estimate").
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

from replyclock.services.estimating import ScopeReport, Score, backtest_export

DEFAULT_EXPORT = Path("/work/shared/datasets/twcs_head5000.csv")


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{value:.0%}"


def _summary(score: Score) -> dict[str, Any]:
    return {
        "median_absolute_error_seconds": score.median_absolute_error,
        "coverage": score.coverage,
        "median_interval_width_seconds": score.median_width,
    }


def as_json(report: ScopeReport) -> dict[str, Any]:
    counts = {key: value for key, value in asdict(report).items() if not isinstance(value, dict)}
    return {**counts, "eta": _summary(report.eta), "baseline": _summary(report.baseline)}


def table(reports: list[ScopeReport]) -> list[str]:
    lines = [
        "| scope | first waits | answered | ETA gives one / baseline gives one | scored (both) "
        "| median abs. error ETA / baseline (s) | interval coverage ETA / baseline | median width ETA / baseline (s) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for report in reports:
        lines.append(
            f"| {report.scope} | {report.first_waits:,} | {report.answered:,} "
            f"| {report.eta_predicted:,} / {report.baseline_predicted:,} | {report.compared:,} "
            f"| {_seconds(report.eta.median_absolute_error)} / {_seconds(report.baseline.median_absolute_error)} "
            f"| {_share(report.eta.coverage)} / {_share(report.baseline.coverage)} "
            f"| {_seconds(report.eta.median_width)} / {_seconds(report.baseline.median_width)} |"
        )
    return lines


def alternatives_table(scores: dict[str, Score]) -> list[str]:
    lines = [
        "| all brands, the same waits | median abs. error (s) | interval coverage | median width (s) |",
        "|---|---:|---:|---:|",
    ]
    for name, score in scores.items():
        lines.append(
            f"| {name} | {_seconds(score.median_absolute_error)} | {_share(score.coverage)} "
            f"| {_seconds(score.median_width)} |"
        )
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks eta", description=__doc__)
    parser.add_argument("export", nargs="?", type=Path, default=DEFAULT_EXPORT, help="a twcs CSV export")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    reports, scores = backtest_export(args.export)
    if args.json:
        alternatives = {name: _summary(score) for name, score in scores.items()}
        print(json.dumps({"scopes": [as_json(report) for report in reports], "alternatives": alternatives}, indent=2))
        return
    print("\n".join(table(reports)))
    print()
    print("\n".join(alternatives_table(scores)))
    print(f"\n{args.export.name}: backtest took {time.perf_counter() - started:.1f} s")
