"""Surge detection on a twcs export, with synthetic spikes: `python -m benchmarks surges [FILE] [--trials N] [--json]`.

The export's waits are computed as the measuring path computes them (services.estimating.export_waits); a
wait's start is an arrival in its slot, as the aggregate step counts it (services.surging.count_arrivals).
The sweeper is then replayed minute by minute, in time order, through the same pure detection the sweeper
runs (logic.surges.decide), with exactly what the table would hold at each minute: the arrivals up to that
minute (the current slot partial), the hour before and the same hour of the four weeks before.

Two measurements:

- false surges: the real background alone, every brand and channel; an opened episode counts as false
  (some may be real bursts of the export: the busiest are listed), per brand-day with at least one arrival;
- detection: one spike of SIZE extra arrivals spread uniformly over 5 to 15 minutes, injected at a random time
  within the active span of one of the ten busiest brands, on top of its real background; detected when an
  episode opens between the spike's first arrival and 15 minutes after its last; delay from the spike's first
  arrival to the sweep minute that opens it (the pipeline's own seconds of lag not included).

Seeded: the same command prints the same table. The table is the one in docs/insights.md ("Surges").
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import statistics
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from replyclock.logic.surges import (
    DEFAULT_POLICY,
    SLOT,
    OpenSurge,
    SurgePolicy,
    SurgeReading,
    decide,
    needed_slots,
    seasonal_hours_of,
    slot_start,
)

DEFAULT_EXPORT = Path("/work/shared/datasets/twcs_head5000.csv")
SPIKE_SIZES = (5, 10, 20, 50)
SPIKE_MINUTES = (5, 15)
BUSIEST = 10
# An episode closes at most this long after the last arrival near it (15 minutes of complete slots and one more
# slot after the opening one): minutes further from any arrival cannot change anything.
QUIET_AFTER = timedelta(minutes=30)
# Before a spike, the replay starts this early so the detector's state (an episode already open) is as live.
BURN_IN = timedelta(minutes=90)
DETECTION_GRACE = timedelta(minutes=15)
MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class Episode:
    opened_at: datetime  # the sweep minute that opened it
    opened_slot: datetime
    arrivals: int
    baseline_per_slot: float
    closed_at: datetime | None = None


def _ceil_minute(moment: datetime) -> datetime:
    floor = moment.replace(second=0, microsecond=0)
    return floor if floor == moment else floor + MINUTE


def sweep_minutes(arrivals: Sequence[datetime], start: datetime, end: datetime) -> list[datetime]:
    """The sweep minutes in [start, end] at which something can happen: within QUIET_AFTER of an arrival."""
    minutes: set[datetime] = set()
    for arrival in arrivals:
        minute = max(_ceil_minute(arrival), _ceil_minute(start))
        last = min(arrival + QUIET_AFTER, end)
        while minute <= last:
            minutes.add(minute)
            minute += MINUTE
    return sorted(minutes)


class Arrivals:
    """One brand's channel's arrival times, sorted, read as the table holds them at a sweep minute."""

    def __init__(self, times: Iterable[datetime]) -> None:
        self.times = sorted(times)

    def between(self, start: datetime, end: datetime) -> int:
        """Arrivals in [start, end)."""
        return bisect.bisect_left(self.times, end) - bisect.bisect_left(self.times, start)

    def reading(self, now: datetime, policy: SurgePolicy) -> SurgeReading:
        # The table at `now` holds the arrivals up to now: the current slot only partly.
        known_until = now + timedelta(microseconds=1)
        counts = {slot: self.between(slot, min(slot + SLOT, known_until)) for slot in needed_slots(now, policy)}
        seasonal = [self.between(hour, hour + timedelta(hours=1)) for hour in seasonal_hours_of(now, policy)]
        return SurgeReading(now, {slot: count for slot, count in counts.items() if count}, seasonal)


def replay(
    arrivals: Arrivals, minutes: Iterable[datetime], policy: SurgePolicy = DEFAULT_POLICY
) -> tuple[list[Episode], bool]:
    """The episodes the sweeper opens over these minutes, and whether one was open at the first minute's end.

    Starts with no episode open; the sweeper's transitions exactly: open once, close with hysteresis.
    """
    episodes: list[Episode] = []
    current: Episode | None = None
    for now in minutes:
        reading = arrivals.reading(now, policy)
        frozen = OpenSurge(current.opened_slot, current.baseline_per_slot) if current else None
        decision = decide(frozen, reading, policy)
        if current is None and decision.opens:
            opened_slot = slot_start(now) - SLOT * (decision.assessment.window_slots - 1)
            assessment = decision.assessment
            current = Episode(now, opened_slot, assessment.arrivals, assessment.baseline_per_slot)
            episodes.append(current)
        elif current is not None and decision.closes:
            episodes[-1] = replace(current, closed_at=now)
            current = None
    return episodes, current is not None


def arrivals_by_lane(waits: Iterable[Any]) -> dict[tuple[str, str], list[datetime]]:
    lanes: dict[tuple[str, str], list[datetime]] = defaultdict(list)
    for wait in waits:
        lanes[(wait.brand_id, wait.channel)].append(wait.started_at)
    return {lane: sorted(times) for lane, times in lanes.items()}


@dataclass
class Background:
    brand_days: int = 0
    arrivals: int = 0
    episodes: list[tuple[str, str, Episode]] = field(default_factory=list)


def false_surges(lanes: dict[tuple[str, str], list[datetime]], policy: SurgePolicy) -> Background:
    background = Background()
    days: set[tuple[str, Any]] = set()
    for (brand_id, channel), times in sorted(lanes.items()):
        days.update((brand_id, moment.date()) for moment in times)
        background.arrivals += len(times)
        minutes = sweep_minutes(times, times[0], times[-1] + QUIET_AFTER)
        episodes, _ = replay(Arrivals(times), minutes, policy)
        background.episodes.extend((brand_id, channel, episode) for episode in episodes)
    background.brand_days = len(days)
    return background


# Where a spike lands: uniformly over the brand's active span (mostly quiet hours in an export like the twcs head),
# or where the brand is busy (at one of its own arrivals, drawn uniformly, +/- 30 minutes).
PLACEMENTS = ("uniform", "busy")
BUSY_JITTER = timedelta(minutes=30)


@dataclass
class Trial:
    placement: str
    size: int
    brand_id: str
    start: datetime
    minutes: float
    delay_minutes: float | None  # None: not detected
    # The background had a surge open at the spike's start, or opened one in its window without it.
    background_surge: bool


def spike_trial(
    times: list[datetime], brand_id: str, size: int, placement: str, rng: random.Random, policy: SurgePolicy
) -> Trial:
    if placement == "busy":
        start = rng.choice(times) + BUSY_JITTER * rng.uniform(-1, 1)
    else:
        start = times[0] + timedelta(seconds=rng.uniform(0, (times[-1] - times[0]).total_seconds()))
    length = timedelta(minutes=rng.uniform(*SPIKE_MINUTES))
    spike = sorted(start + length * rng.random() for _ in range(size))
    spike[0] = start  # the spike's first arrival is its start
    arrivals = Arrivals([*times, *spike])
    window_start, window_end = start - BURN_IN, spike[-1] + DETECTION_GRACE
    minutes = sweep_minutes(arrivals.times, window_start, window_end)
    before = [minute for minute in minutes if minute < start]
    during = [minute for minute in minutes if minute >= start]
    _, open_at_start = replay(arrivals, before, policy)
    # The background alone surging in the window would open an episode there, spike or not: no credit for it.
    alone, _ = replay(Arrivals(times), sweep_minutes(times, start, window_end), policy)
    if open_at_start or any(start <= episode.opened_at <= window_end for episode in alone):
        return Trial(placement, size, brand_id, start, length.total_seconds() / 60, None, True)
    episodes, _ = replay(arrivals, during, policy)
    opened = [episode.opened_at for episode in episodes if start <= episode.opened_at <= window_end]
    delay = (opened[0] - start).total_seconds() / 60 if opened else None
    return Trial(placement, size, brand_id, start, length.total_seconds() / 60, delay, False)


def _nearest_rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(0, math.ceil(q * len(ordered)) - 1)]


def detection(trials: list[Trial]) -> list[dict[str, Any]]:
    rows = []
    for placement in PLACEMENTS:
        for size in sorted({trial.size for trial in trials}):
            rows.append(_detection_row([t for t in trials if (t.placement, t.size) == (placement, size)]))
    return rows


def _detection_row(trials: list[Trial]) -> dict[str, Any]:
    """Detection of one placement and size, leaving out the trials where the background surges by itself."""
    scored = [trial for trial in trials if not trial.background_surge]
    delays = sorted(trial.delay_minutes for trial in scored if trial.delay_minutes is not None)
    return {
        "placement": trials[0].placement,
        "spike_size": trials[0].size,
        "trials": len(scored),
        "background_surge": len(trials) - len(scored),
        "detected": len(delays),
        "detection_rate": len(delays) / len(scored) if scored else None,
        "median_delay_minutes": statistics.median(delays) if delays else None,
        "p90_delay_minutes": _nearest_rank(delays, 0.9) if delays else None,
        "max_delay_minutes": delays[-1] if delays else None,
    }


def evaluate(path: Path, trials_per_size: int, seed: int = 16, policy: SurgePolicy = DEFAULT_POLICY) -> dict[str, Any]:
    from replyclock.services.estimating import export_waits  # the measuring path's waits of an export

    lanes = arrivals_by_lane(export_waits(path))
    background = false_surges(lanes, policy)
    everyone = Arrivals(moment for times in lanes.values() for moment in times)
    busiest = sorted(lanes, key=lambda lane: (-len(lanes[lane]), lane))[:BUSIEST]
    rng = random.Random(seed)
    trials = [
        spike_trial(lanes[lane], lane[0], size, placement, rng, policy)
        for placement in PLACEMENTS
        for size in SPIKE_SIZES
        for lane in (rng.choice(busiest) for _ in range(trials_per_size))
    ]
    return {
        "export": str(path),
        "policy": policy.__dict__,
        "background": {
            "lanes": len(lanes),
            "arrivals": background.arrivals,
            "brand_days": background.brand_days,
            "false_surges": len(background.episodes),
            "false_surges_per_brand_day": len(background.episodes) / background.brand_days,
            "episodes": [
                {
                    "brand": brand_id,
                    "channel": channel,
                    "opened_at": episode.opened_at.isoformat(),
                    "arrivals": episode.arrivals,
                    "closed_at": episode.closed_at.isoformat() if episode.closed_at else None,
                    # How the whole export's volume moved then: every brand's arrivals, the hour before and after.
                    "export_hour_before": everyone.between(episode.opened_at - timedelta(hours=1), episode.opened_at),
                    "export_hour_after": everyone.between(episode.opened_at, episode.opened_at + timedelta(hours=1)),
                }
                for brand_id, channel, episode in background.episodes
            ],
        },
        "busiest": [f"{brand_id} ({len(lanes[(brand_id, channel)])})" for brand_id, channel in busiest],
        "detection": detection(trials),
    }


SENSITIVITY = (
    ("open_tail 1e-3", SurgePolicy(open_tail=1e-3)),
    ("open_tail 1e-4 (default)", DEFAULT_POLICY),
    ("open_tail 1e-5", SurgePolicy(open_tail=1e-5)),
    ("open_tail 1e-4, min_arrivals 8", SurgePolicy(min_arrivals=8)),
)


def sensitivity(path: Path, trials_per_size: int, seed: int) -> list[dict[str, Any]]:
    """False surges and detection rates of a few other thresholds, on the same spikes (the same seed)."""
    rows = []
    for name, policy in SENSITIVITY:
        result = evaluate(path, trials_per_size, seed, policy)
        rows.append(
            {
                "policy": name,
                "false_surges_per_brand_day": result["background"]["false_surges_per_brand_day"],
                # Spikes where the brand is busy: the harder case.
                "detection_rate": {
                    row["spike_size"]: row["detection_rate"]
                    for row in result["detection"]
                    if row["placement"] == "busy"
                },
                "median_delay_minutes": {
                    row["spike_size"]: row["median_delay_minutes"]
                    for row in result["detection"]
                    if row["placement"] == "busy"
                },
            }
        )
    return rows


def sensitivity_table(rows: list[dict[str, Any]]) -> list[str]:
    sizes = sorted(rows[0]["detection_rate"])
    lines = [
        "| thresholds | false surges per brand-day | "
        + " | ".join(f"spike {size} (busy): detected / median delay" for size in sizes)
        + " |",
        "|---|---:|" + "---:|" * len(sizes),
    ]
    for row in rows:
        cells = [
            f"{_value(row['detection_rate'][size], '{:.0%}')} / "
            f"{_value(row['median_delay_minutes'][size], '{:.1f}')} min"
            for size in sizes
        ]
        lines.append(f"| {row['policy']} | {row['false_surges_per_brand_day']:.4f} | " + " | ".join(cells) + " |")
    return lines


def _value(value: float | None, pattern: str) -> str:
    return "-" if value is None else pattern.format(value)


def table(result: dict[str, Any]) -> list[str]:
    background = result["background"]
    lines = [
        f"Real background: {background['arrivals']:,} arrivals (waits opened) on {background['lanes']} brand "
        f"channels, {background['brand_days']:,} brand-days with an arrival; "
        f"{background['false_surges']} surges opened = {background['false_surges_per_brand_day']:.4f} per brand-day.",
        "",
        "| spike placed | spike (extra arrivals in 5-15 min) | trials | detected | detection rate "
        "| median delay (min) | p90 delay (min) | max delay (min) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in result["detection"]:
        lines.append(
            f"| {row['placement']} | {row['spike_size']} | {row['trials']} | {row['detected']} "
            f"| {_value(row['detection_rate'], '{:.0%}')} "
            f"| {_value(row['median_delay_minutes'], '{:.1f}')} | {_value(row['p90_delay_minutes'], '{:.1f}')} "
            f"| {_value(row['max_delay_minutes'], '{:.1f}')} |"
        )
    skipped = sum(row["background_surge"] for row in result["detection"])
    if skipped:
        lines.append(
            f"\n{skipped} trials left out: the background alone had a surge open at the spike's start "
            "or opening during it."
        )
    if background["episodes"]:
        lines.append("\nSurges the real background opened:")
        lines.extend(
            f"- {episode['brand']} on {episode['channel']}: opened {episode['opened_at']} on {episode['arrivals']} "
            f"arrivals, closed {episode['closed_at']}; the whole export: {episode['export_hour_before']} arrivals "
            f"the hour before, {episode['export_hour_after']} the hour after"
            for episode in background["episodes"]
        )
    return lines


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks surges", description=__doc__)
    parser.add_argument("export", nargs="?", type=Path, default=DEFAULT_EXPORT, help="a twcs CSV export")
    parser.add_argument("--trials", type=int, default=200, help="spikes injected per size (default 200)")
    parser.add_argument("--seed", type=int, default=16, help="random seed of the spikes (default 16)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a Markdown table")
    parser.add_argument(
        "--sensitivity", action="store_true", help="also compare a few other thresholds on the same spikes"
    )
    args = parser.parse_args(argv)
    if args.trials < 1:
        parser.error("--trials must be at least 1")
    if not args.export.is_file():
        parser.error(f"no such export: {args.export}")
    started = time.perf_counter()
    result = evaluate(args.export, args.trials, args.seed)
    if args.sensitivity:
        result["sensitivity"] = sensitivity(args.export, args.trials, args.seed)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
        return
    print("\n".join(table(result)))
    if args.sensitivity:
        print("\n" + "\n".join(sensitivity_table(result["sensitivity"])))
    print(f"\n({time.perf_counter() - started:.1f} s; busiest brands: {', '.join(result['busiest'])})")
