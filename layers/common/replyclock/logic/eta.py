"""The live wait estimate: how long a mention arriving now will likely wait for the brand's first response.

Pure: the API reads a bounded set of aggregate buckets (the trailing week, and the same hour of the
week in the weeks before) plus the sweeper's count of open waits, and hands them here. The estimate is:

- expected: the median first response of waits that started within an hour of this hour of the week
  over the previous PROFILE_WEEKS weeks (a care team's speed follows its rota: night shifts, weekends),
  or, with too few of those, the median of the trailing RECENT_DAYS days;
- the 80% interval: the 5th to 95th percentile of the trailing days' first responses. Not the 10th to
  90th: a care team's next hour is not drawn from last week's distribution, and on twcs_head5000.csv
  the nominal 10th-90th range covered 72% of actual waits where 5th-95th covered 80% (docs/insights.md,
  "Live wait estimate"), so the interval is the one that keeps its promise;
- no number at all ("not enough history") below MIN_ANSWERED answered waits: an estimate from two or
  three answers is an invented number.

The open backlog and the recent answer rate are reported alongside, with the time the team would take to
answer the backlog at that rate, but they do not move the estimate: in the backtest on twcs, scaling the
estimate by the backlog or flooring it at that clearance time made the median error several times worse
(docs/design-decisions.md, "Live wait estimate").

Latencies come from the buckets' histograms (1% relative accuracy), of waits that started in the window
and were answered by now: what a reader of the table knows at this instant.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketTotals, PeriodKey
from replyclock.logic.histogram import LatencyHistogram
from replyclock.models.domain import Clock

RECENT_DAYS = 7
PROFILE_WEEKS = 4
# The hour of the week is widened by an hour on each side: a rota's edges do not fall on UTC hours.
PROFILE_SPREAD = timedelta(hours=1)
MIN_ANSWERED = 5
MEDIAN = 0.5
LOWER_QUANTILE = 0.05
UPPER_QUANTILE = 0.95
WEEK = timedelta(days=7)


class Basis(StrEnum):
    """What the expected wait was taken from."""

    HOUR_OF_WEEK = "hour_of_week"
    RECENT = "recent"
    NOT_ENOUGH_HISTORY = "not_enough_history"


def recent_window(now: datetime) -> metrics.TimeWindow:
    """The trailing RECENT_DAYS days up to now, widened to whole UTC hours (the buckets that cover it)."""
    return metrics.aligned(metrics.TimeWindow(now - timedelta(days=RECENT_DAYS), now))


def profile_windows(now: datetime) -> list[metrics.TimeWindow]:
    """The same hour of the week (and the hour either side) this week and in each of the PROFILE_WEEKS weeks before.

    This week's is the last hour or two: the freshest evidence of how fast the team answers right now.
    """
    hour = metrics.aligned(metrics.TimeWindow(now, now)).start
    return [
        metrics.TimeWindow(hour - weeks * WEEK - PROFILE_SPREAD, hour - weeks * WEEK + metrics.HOUR + PROFILE_SPREAD)
        for weeks in range(PROFILE_WEEKS + 1)
    ]


@dataclass(frozen=True)
class WaitHistory:
    """What the estimate is made from: first-response latencies known now, and the open backlog."""

    recent: LatencyHistogram
    profile: LatencyHistogram
    recent_hours: int
    # The sweeper's latest count of the brand's (or channel's) open waits; None before its first count.
    open_waits: int | None = None


def history_from(
    recent: Iterable[tuple[PeriodKey, BucketTotals]],
    profile: Iterable[tuple[PeriodKey, BucketTotals]],
    *,
    recent_hours: int,
    open_waits: int | None,
) -> WaitHistory:
    """The first-response histograms (calendar time: what the customer lives through) of the buckets read."""
    return WaitHistory(
        recent=metrics.first_response_histogram(recent, Clock.CALENDAR),
        profile=metrics.first_response_histogram(profile, Clock.CALENDAR),
        recent_hours=recent_hours,
        open_waits=open_waits,
    )


@dataclass(frozen=True)
class WaitEstimate:
    basis: Basis
    # None with Basis.NOT_ENOUGH_HISTORY; otherwise low <= expected <= high.
    expected_seconds: float | None
    low_seconds: float | None
    high_seconds: float | None
    recent_answered: int
    profile_answered: int
    answers_per_hour: float
    open_waits: int | None
    # How long answering the open backlog would take at the recent answer rate; None without both.
    clearance_seconds: float | None

    @property
    def has_estimate(self) -> bool:
        return self.basis is not Basis.NOT_ENOUGH_HISTORY


def _usable(histogram: LatencyHistogram) -> int:
    """Answered waits in a histogram; 0 for a half-applied delta (negative counts), which is never a total."""
    return 0 if histogram.has_negative_counts else histogram.count


def estimate(history: WaitHistory) -> WaitEstimate:
    recent_answered, profile_answered = _usable(history.recent), _usable(history.profile)
    answers_per_hour = recent_answered / history.recent_hours if history.recent_hours > 0 else 0.0
    clearance = None
    if history.open_waits is not None and answers_per_hour > 0:
        clearance = history.open_waits / answers_per_hour * 3600
    without = WaitEstimate(
        basis=Basis.NOT_ENOUGH_HISTORY,
        expected_seconds=None,
        low_seconds=None,
        high_seconds=None,
        recent_answered=recent_answered,
        profile_answered=profile_answered,
        answers_per_hour=answers_per_hour,
        open_waits=history.open_waits,
        clearance_seconds=clearance,
    )
    if recent_answered < MIN_ANSWERED:
        return without
    if profile_answered >= MIN_ANSWERED:
        basis, expected = Basis.HOUR_OF_WEEK, _quantile(history.profile, MEDIAN)
    else:
        basis, expected = Basis.RECENT, _quantile(history.recent, MEDIAN)
    low = min(_quantile(history.recent, LOWER_QUANTILE), expected)
    high = max(_quantile(history.recent, UPPER_QUANTILE), expected)
    return replace(without, basis=basis, expected_seconds=expected, low_seconds=low, high_seconds=high)


def _quantile(histogram: LatencyHistogram, q: float) -> float:
    value = histogram.quantile(q)
    if value is None:  # only an empty histogram has none, and estimate() never asks one
        raise ValueError("no latency to take a quantile of")
    return value
