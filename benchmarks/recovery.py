"""Recovery on an export: `python -m benchmarks.recovery [FILE] [--json]` (the tables of docs/insights.md, "Recovery").

Two parts, on the same fold the stream path runs (posts scored once each, as the post store scores them):

- the figures GET /metrics/recovery gives, from the backtest's buckets (services.backtesting, as
  `replyclock replay --json` prints them): the ten brands with the most first waits and all brands together,
  and all brands per response band, each rate with its Wilson 95% interval (the counts are small);
- what a rate means: the follow-ups of customers who were negative before the answer split into positive,
  neutral and negative, against the follow-ups of customers who were not negative before it (how often a
  follow-up is non-negative anyway).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections import Counter
from pathlib import Path

from replyclock.logic.recovery import ResponseBand, outcome_of
from replyclock.logic.sentiment import NEGATIVE_AT_MOST, is_negative, scored
from replyclock.logic.waits import brands_in_conversation, fold_conversation, placed_conversation
from replyclock.models.api import RecoveryFigures
from replyclock.models.domain import Post
from replyclock.services import backtesting
from replyclock.services.measuring import directory_from

DEFAULT_EXPORT = Path(__file__).resolve().parents[2] / "shared" / "datasets" / "twcs_head5000.csv"
BUSIEST = 10
# VADER's positive threshold (its README): compound >= 0.05.
POSITIVE_AT_LEAST = 0.05


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a proportion (95% by default); None without trials."""
    if not trials:
        return None
    share = successes / trials
    scale = 1 + z * z / trials
    centre = (share + z * z / (2 * trials)) / scale
    half = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials)) / scale
    return max(0.0, centre - half), min(1.0, centre + half)


def _row(name: str, figures: RecoveryFigures) -> str:
    interval = wilson(figures.recovered, figures.followed_up)
    rate = f"{figures.recovery_rate:.1%}" if figures.recovery_rate is not None else "-"
    spread = f"{interval[0]:.0%}-{interval[1]:.0%}" if interval else "-"
    return (
        f"| {name} | {figures.negative} | {figures.no_follow_up} | {figures.followed_up} | {figures.recovered} "
        f"| {rate} | {spread} |"
    )


def _summed(items: list[RecoveryFigures]) -> RecoveryFigures:
    negative = sum(item.negative for item in items)
    followed_up = sum(item.followed_up for item in items)
    recovered = sum(item.recovered for item in items)
    return RecoveryFigures(
        negative=negative,
        followed_up=followed_up,
        recovered=recovered,
        no_follow_up=negative - followed_up,
        recovery_rate=recovered / followed_up if followed_up else None,
    )


def follow_up_shares(path: Path) -> dict[str, Counter[str]]:
    """Follow-ups after an answer by how the customer felt before it: negative or not -> positive/neutral/negative."""
    export = backtesting.export_contents(path, "twcs")
    brands = directory_from(backtesting.uniform_policy_brands(export.brand_ids, 3600))
    posts = [scored(post) for post in export.posts]
    shares: dict[str, Counter[str]] = {
        "negative before": Counter(),
        "not negative before": Counter(),
        "answered": Counter(),
    }
    threads: dict[tuple[str, str], list[Post]] = {}
    for post in posts:
        threads.setdefault((post.channel, post.conversation_id), []).append(post)
    for thread in threads.values():
        placed = placed_conversation(thread, brands.brand_for_handle)
        for brand_id in sorted(brands_in_conversation(placed, brands.brand_for_handle)):
            fold = fold_conversation(placed, brands.get(brand_id), brands.brand_for_handle)
            for lane in fold.lanes.values():
                for wait in lane.waits():
                    if not wait.is_open:
                        shares["answered"]["waits"] += 1
                    if wait.is_open or wait.sentiment_before is None or wait.sentiment_after is None:
                        continue
                    started = "negative before" if outcome_of(wait) is not None else "not negative before"
                    after = wait.sentiment_after
                    felt = "positive" if after >= POSITIVE_AT_LEAST else "negative" if is_negative(after) else "neutral"
                    shares[started][felt] += 1
    return shares


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recovery", description=__doc__.split("\n\n")[0])
    parser.add_argument("file", nargs="?", type=Path, default=DEFAULT_EXPORT, help="a twcs export")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON instead of tables")
    args = parser.parse_args(argv)
    outcome = backtesting.backtest_export(args.file, "twcs", 3600)
    summaries, recoveries = outcome.result.summaries, outcome.result.recoveries
    busiest = sorted(summaries, key=lambda brand_id: (-summaries[brand_id].mentions, brand_id))[:BUSIEST]
    everyone = _summed([recovery for recovery in recoveries.values()])
    by_band = {
        band: _summed([recovery.by_response_band[index] for recovery in recoveries.values()])
        for index, band in enumerate(ResponseBand)
    }
    shares = follow_up_shares(args.file)
    if args.json:
        print(
            json.dumps(
                {
                    "brands": {brand_id: recoveries[brand_id].model_dump(mode="json") for brand_id in busiest},
                    "all_brands": everyone.model_dump(mode="json"),
                    "by_response_band": {
                        band.value: figures.model_dump(mode="json") for band, figures in by_band.items()
                    },
                    "follow_ups": {started: dict(counts) for started, counts in shares.items()},
                }
            )
        )
        return
    header = (
        "| {} | negative before the answer | no follow-up | followed up | recovered | recovery rate | 95% interval |"
    )
    rule = "|---|---:|---:|---:|---:|---:|---|"
    print(header.format("brand"), rule, sep="\n")
    for brand_id in busiest:
        print(_row(brand_id, recoveries[brand_id]))
    print(_row(f"all {len(recoveries)} brands", everyone))
    print()
    print(header.format("answered within"), rule, sep="\n")
    for band, figures in by_band.items():
        print(_row(band.value, figures))
    print()
    print(f"| follow-up of those | positive (>= {POSITIVE_AT_LEAST}) | neutral | negative (<= {NEGATIVE_AT_MOST}) |")
    print("|---|---:|---:|---:|")
    answered = shares.pop("answered")["waits"]
    for started, counts in shares.items():
        total = sum(counts.values()) or 1
        cells = " | ".join(
            f"{counts[felt]} ({counts[felt] / total:.0%})" for felt in ("positive", "neutral", "negative")
        )
        print(f"| {started} | {cells} |")
    print(f"\nanswered waits: {answered}, of which negative before the answer: {everyone.negative}")


if __name__ == "__main__":
    main(sys.argv[1:])
