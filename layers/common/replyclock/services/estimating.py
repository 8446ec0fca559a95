"""Backtest of the live wait estimate: each first wait of an export predicted at its start, against the actual.

The export's conversations are folded whole with logic.waits, as the backtest of the summary folds them
(services.backtesting). The waits are then replayed in time order as the table would have seen them: a
wait's start adds it, pending, to its hourly bucket and to the open backlog; its answer replaces the
pending wait by the answered one (the difference measure and aggregate apply). At each first wait's
start the estimate is computed by logic.eta from exactly what GET /brands/{id}/eta would read at that
instant: the buckets of the trailing week and of the same hour of the week in the weeks before (as
stored: histogram bins only), of the wait's channel, and the channel's open waits (the sweeper's
count). Everything that starts or is answered at that instant or later is unknown to it.

The baseline is what Intercom shows ("typically replies in ..."): the median first response of the
waits answered in the trailing 7 days, exact; its interval, for comparison, the 10th to 90th percentile
of the same answers. Only answered waits have an actual to compare with; the waits the export leaves
unanswered are counted, not scored.

Memory holds every wait of the export: meant for exports of up to a few million posts.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

from replyclock.logic import eta
from replyclock.logic.aggregation import BucketKey, BucketTotals
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.waits import brands_in_conversation, fold_conversation, placed_conversation
from replyclock.models.domain import Post, Wait, WaitKind, WaitStatus
from replyclock.services import backtesting
from replyclock.services.measuring import BrandDirectory, directory_from

BASELINE_WINDOW = timedelta(days=7)
BASELINE_LOWER, BASELINE_UPPER = 0.10, 0.90
# How many brands, the busiest by first waits, the report breaks out.
BUSIEST = 5


def export_waits(path: Path, kind: str = "twcs") -> list[Wait]:
    """Every wait of every brand in the export, as the measuring path computes them (no sweeper: open stays open)."""
    export = backtesting.export_contents(path, kind)
    return waits_of(export.posts, directory_from(backtesting.uniform_policy_brands(export.brand_ids, 3600)))


def waits_of(posts: Iterable[Post], brands: BrandDirectory) -> list[Wait]:
    threads: dict[tuple[str, str], list[Post]] = defaultdict(list)
    for post in posts:
        threads[(post.channel, post.conversation_id)].append(post)
    waits: list[Wait] = []
    for thread in threads.values():
        placed = placed_conversation(thread, brands.brand_for_handle)
        for brand_id in sorted(brands_in_conversation(placed, brands.brand_for_handle)):
            fold = fold_conversation(placed, brands.get(brand_id), brands.brand_for_handle)
            for lane in fold.lanes.values():
                waits.extend(lane.waits())
    return waits


def pending(wait: Wait) -> Wait:
    """The wait as it stood before its answer."""
    return wait.model_copy(
        update={
            "end_post_id": None,
            "ended_at": None,
            "calendar_seconds": None,
            "business_seconds": None,
            "status": WaitStatus.PENDING,
            "handed_off": False,
        }
    )


@dataclass(frozen=True)
class Prediction:
    """One first wait: the estimate and the baseline at its start, and what it took (None: never answered)."""

    wait: Wait
    actual_seconds: float | None
    estimate: eta.WaitEstimate
    baseline: tuple[float, float, float] | None  # (median, 10th, 90th percentile)
    # What the estimate was made from (for the alternatives the report weighs against it).
    history: eta.WaitHistory


class _Table:
    """The buckets and open-wait counts a reader of the table would see, brand by brand, as time advances."""

    def __init__(self) -> None:
        self.buckets: dict[str, dict[BucketKey, BucketTotals]] = defaultdict(dict)
        self.open_waits: Counter[tuple[str, str]] = Counter()
        # Per brand and channel: (answered at, first-response seconds) of answered first waits, in answer order.
        self.answers: dict[tuple[str, str], list[tuple[datetime, float]]] = defaultdict(list)

    def _add(self, wait: Wait, totals: BucketTotals) -> None:
        self.buckets[wait.brand_id].setdefault(BucketKey.of(wait), BucketTotals()).merge(totals)

    def start(self, wait: Wait) -> None:
        self._add(wait, BucketTotals.of_wait(pending(wait)))
        self.open_waits[(wait.brand_id, wait.channel)] += 1

    def answer(self, wait: Wait) -> None:
        self._add(wait, BucketTotals.of_wait(pending(wait)).negated())
        self._add(wait, BucketTotals.of_wait(wait))
        self.open_waits[(wait.brand_id, wait.channel)] -= 1
        if wait.kind is WaitKind.FIRST and wait.ended_at is not None and wait.calendar_seconds is not None:
            self.answers[(wait.brand_id, wait.channel)].append((wait.ended_at, wait.calendar_seconds))

    def history(self, brand_id: str, channel: str, now: datetime) -> eta.WaitHistory:
        """What GET /brands/{brand_id}/eta?channel= would read at `now`."""
        recent_window = eta.recent_window(now)
        profile_windows = eta.profile_windows(now)
        recent, profile = [], []
        for key, totals in self.buckets[brand_id].items():
            if key.channel != channel:
                continue
            stored = (key, backtesting.as_stored(totals))
            if recent_window.start <= key.starts_at < recent_window.end:
                recent.append(stored)
            if any(window.start <= key.starts_at < window.end for window in profile_windows):
                profile.append(stored)
        return eta.history_from(
            recent, profile, recent_hours=recent_window.hours, open_waits=self.open_waits[(brand_id, channel)]
        )

    def baseline(self, brand_id: str, channel: str, now: datetime) -> tuple[float, float, float] | None:
        """Median (and 10th, 90th percentile) first response of the answers of the trailing 7 days."""
        latencies = sorted(
            seconds for answered_at, seconds in self.answers[(brand_id, channel)] if answered_at > now - BASELINE_WINDOW
        )
        if len(latencies) < eta.MIN_ANSWERED:
            return None
        return (
            statistics.median(latencies),
            nearest_rank(latencies, BASELINE_LOWER),
            nearest_rank(latencies, BASELINE_UPPER),
        )


def nearest_rank(ordered: Sequence[float], q: float) -> float:
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


# At one instant: predictions see nothing of that instant, then starts, then answers (an answer at the very
# instant of its start, a zero wait, needs the start first).
_PREDICT, _START, _ANSWER = 0, 1, 2


def predict_in_time_order(waits: Iterable[Wait]) -> list[Prediction]:
    events: list[tuple[datetime, int, int, Wait]] = []
    for number, wait in enumerate(waits):
        if wait.kind is WaitKind.FIRST:
            events.append((wait.started_at, _PREDICT, number, wait))
        events.append((wait.started_at, _START, number, wait))
        if wait.ended_at is not None:
            events.append((wait.ended_at, _ANSWER, number, wait))
    events.sort(key=lambda event: event[:3])
    table = _Table()
    predictions = []
    for moment, what, _, wait in events:
        if what == _START:
            table.start(wait)
        elif what == _ANSWER:
            table.answer(wait)
        else:
            history = table.history(wait.brand_id, wait.channel, moment)
            predictions.append(
                Prediction(
                    wait=wait,
                    actual_seconds=wait.calendar_seconds,
                    estimate=eta.estimate(history),
                    baseline=table.baseline(wait.brand_id, wait.channel, moment),
                    history=history,
                )
            )
    return predictions


@dataclass
class Score:
    """How one predictor did on a set of waits."""

    predicted: int = 0
    absolute_errors: list[float] = field(default_factory=list)
    covered: int = 0
    widths: list[float] = field(default_factory=list)

    def add(self, expected: float, low: float, high: float, actual: float) -> None:
        self.absolute_errors.append(abs(expected - actual))
        self.covered += low <= actual <= high
        self.widths.append(high - low)

    @property
    def median_absolute_error(self) -> float | None:
        return statistics.median(self.absolute_errors) if self.absolute_errors else None

    @property
    def coverage(self) -> float | None:
        return self.covered / len(self.absolute_errors) if self.absolute_errors else None

    @property
    def median_width(self) -> float | None:
        return statistics.median(self.widths) if self.widths else None


@dataclass
class ScopeReport:
    """ETA against the baseline over one scope (every brand, or one brand)."""

    scope: str
    first_waits: int = 0
    answered: int = 0
    # Answered waits both predicted, the set both are scored on.
    compared: int = 0
    eta: Score = field(default_factory=Score)
    baseline: Score = field(default_factory=Score)
    eta_predicted: int = 0
    baseline_predicted: int = 0


def score(predictions: Iterable[Prediction], scope: str) -> ScopeReport:
    report = ScopeReport(scope)
    for prediction in predictions:
        report.first_waits += 1
        report.eta_predicted += prediction.estimate.has_estimate
        report.baseline_predicted += prediction.baseline is not None
        actual = prediction.actual_seconds
        if actual is None:
            continue
        report.answered += 1
        estimate = prediction.estimate
        if prediction.baseline is None or estimate.expected_seconds is None:
            continue
        assert estimate.low_seconds is not None and estimate.high_seconds is not None
        report.compared += 1
        report.eta.add(estimate.expected_seconds, estimate.low_seconds, estimate.high_seconds, actual)
        median, low, high = prediction.baseline
        report.baseline.add(median, low, high, actual)
    return report


def backtest(predictions: Sequence[Prediction], busiest: int = BUSIEST) -> list[ScopeReport]:
    """Every brand together, then the busiest brands (by first waits) one by one."""
    counts = Counter(prediction.wait.brand_id for prediction in predictions)
    ranked = sorted(counts, key=lambda brand_id: (-counts[brand_id], brand_id))[:busiest]
    reports = [score(predictions, "all brands")]
    for brand_id in ranked:
        reports.append(score((p for p in predictions if p.wait.brand_id == brand_id), brand_id))
    return reports


def backtest_export(
    path: Path, kind: str = "twcs", busiest: int = BUSIEST
) -> tuple[list[ScopeReport], dict[str, Score]]:
    predictions = predict_in_time_order(export_waits(path, kind))
    return backtest(predictions, busiest), alternatives(predictions)


# Alternatives to the estimate, each from the same history: what the design was chosen against.
Predictor = Callable[[eta.WaitHistory, eta.WaitEstimate], tuple[float, float, float]]


def _as_made(history: eta.WaitHistory, made: eta.WaitEstimate) -> tuple[float, float, float]:
    assert made.expected_seconds is not None and made.low_seconds is not None and made.high_seconds is not None
    return made.expected_seconds, made.low_seconds, made.high_seconds


def _quantile(histogram: LatencyHistogram, q: float) -> float:
    value = histogram.quantile(q)
    assert value is not None
    return value


def _week_only(history: eta.WaitHistory, made: eta.WaitEstimate) -> tuple[float, float, float]:
    _, low, high = _as_made(history, made)
    return _quantile(history.recent, eta.MEDIAN), low, high


def _nominal_interval(history: eta.WaitHistory, made: eta.WaitEstimate) -> tuple[float, float, float]:
    expected, _, _ = _as_made(history, made)
    low, high = _quantile(history.recent, 0.10), _quantile(history.recent, 0.90)
    return expected, min(low, expected), max(high, expected)


def _backlog_floor(history: eta.WaitHistory, made: eta.WaitEstimate) -> tuple[float, float, float]:
    expected, low, high = _as_made(history, made)
    floor = made.clearance_seconds or 0.0
    return max(expected, floor), low, max(high, floor)


def _backlog_scaled(history: eta.WaitHistory, made: eta.WaitEstimate) -> tuple[float, float, float]:
    expected, low, high = _as_made(history, made)
    factor = math.sqrt(1 + (made.open_waits or 0))
    return expected * factor, low, max(high, expected * factor)


ALTERNATIVES: dict[str, Predictor] = {
    "the estimate (as served)": _as_made,
    "median of the trailing week (no hour of week)": _week_only,
    "nominal 10th-90th percentile interval": _nominal_interval,
    "floored at the backlog's clearance time": _backlog_floor,
    "scaled by sqrt(1 + open waits)": _backlog_scaled,
}


def alternatives(predictions: Iterable[Prediction]) -> dict[str, Score]:
    """Each alternative scored on the waits both the estimate and the baseline predict (the report's set)."""
    scores = {name: Score() for name in ALTERNATIVES}
    for prediction in predictions:
        if prediction.actual_seconds is None or prediction.baseline is None or not prediction.estimate.has_estimate:
            continue
        for name, predictor in ALTERNATIVES.items():
            scores[name].add(*predictor(prediction.history, prediction.estimate), prediction.actual_seconds)
    return scores
