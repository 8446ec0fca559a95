"""Metrics from aggregate buckets: summaries, time series and latency distributions.

Pure: the API reads the buckets of a window (see read_plan) and hands them here. Buckets
merge by addition (counters and histogram bins), so any set of hours, days, channels and
priorities folds into one set of figures; percentiles come from the merged histogram. A
daily bucket is the sum of its day's hourly buckets, so a window's whole UTC days can be
read from daily buckets and its partial days from hourly ones, with the same figures.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta

from replyclock.logic.aggregation import BucketKey, BucketTotals, Granularity, PeriodKey
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.recovery import RecoveryCounts, counts_by_band, total
from replyclock.models.api import (
    DistributionBand,
    Figures,
    Interval,
    LatencyStats,
    RecoveryBand,
    RecoveryFigures,
    SLAStats,
    TimeseriesPoint,
    Window,
)
from replyclock.models.domain import Clock, Priority, WaitKind

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
DEFAULT_WINDOW = timedelta(days=7)
# Beyond these, a window is a typo, and date arithmetic would overflow near datetime's limits.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
# Keeps a time-series response well under Lambda's 6 MB payload limit (100 days of hourly points).
MAX_POINTS = 2400
QUANTILES = (("p50", 0.50), ("p90", 0.90), ("p95", 0.95), ("p99", 0.99))
# (label, upper bound in seconds) of the response-time distribution; the last band has no bound.
DISTRIBUTION_BANDS: tuple[tuple[str, float | None], ...] = (
    ("15m", 15 * 60),
    ("1h", 60 * 60),
    ("4h", 4 * 60 * 60),
    ("24h", 24 * 60 * 60),
    ("over_24h", None),
)
_STEPS = {Interval.HOUR: HOUR, Interval.DAY: DAY}


class WindowError(ValueError):
    """A requested time window the API must refuse; `field` names the parameter at fault."""

    def __init__(self, message: str, field: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class TimeWindow:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def hours(self) -> int:
        return int((self.end - self.start) // HOUR)

    @property
    def is_empty(self) -> bool:
        return self.end <= self.start

    def hour_range(self) -> tuple[str, str]:
        """First and last bucket hour ("YYYY-MM-DDTHH") inside the window; the window must not be empty."""
        return self.period_range(Granularity.HOUR)

    def period_range(self, granularity: Granularity) -> tuple[str, str]:
        """First and last bucket period (hour or day) inside the window; the window must not be empty."""
        return granularity.label(self.start), granularity.label(self.end - timedelta(microseconds=1))

    def to_model(self) -> Window:
        return Window(from_=self.start, to=self.end, hours=self.hours)


def requested_window(
    now: datetime, start: datetime | None, end: datetime | None, *, max_days: int, default: timedelta = DEFAULT_WINDOW
) -> TimeWindow:
    """The window a request asks for: `to` defaults to now, `from` to `default` before `to`; validated."""
    for name, value in (("from", start), ("to", end)):
        if value is not None and (value.tzinfo is None or value.utcoffset() is None):
            raise WindowError(f"{name} must carry a UTC offset, e.g. 2026-01-31T00:00:00Z", name)
        if value is not None and not EARLIEST <= value < LATEST:
            raise WindowError(f"{name} must lie between {EARLIEST:%Y-%m-%d} and {LATEST:%Y-%m-%d}", name)
    end_utc = end.astimezone(UTC) if end is not None else now.astimezone(UTC)
    start_utc = start.astimezone(UTC) if start is not None else max(end_utc - default, EARLIEST)
    if start_utc > end_utc:
        raise WindowError("from must not be after to", "from")
    if end_utc - start_utc > timedelta(days=max_days):
        raise WindowError(f"the window may span at most {max_days} days", "from")
    return TimeWindow(start_utc, end_utc)


def aligned(window: TimeWindow, step: timedelta = HOUR) -> TimeWindow:
    """The window widened to whole steps (hours or UTC days): the buckets that cover it."""
    return TimeWindow(_floor(window.start, step), _ceil(window.end, step))


@dataclass(frozen=True)
class ReadPiece:
    """A part of a window and the items that cover it: hourly, daily or monthly, per channel and priority or brand-wide.

    Brand-wide buckets and roll-ups hold every channel and priority together, so only a request that filters
    on neither may read them; months are brand-wide only.
    """

    window: TimeWindow
    granularity: Granularity
    brand_wide: bool = False

    @property
    def periods(self) -> int:
        """The hours or days it covers (hourly and daily pieces)."""
        return (self.window.end - self.window.start) // self.granularity.length

    def period_range(self) -> tuple[str, str]:
        return self.window.period_range(self.granularity)


def read_plan(
    window: TimeWindow,
    *,
    daily: bool,
    brand_wide: bool = False,
    rolled_through: date | None = None,
    months: bool = True,
) -> list[ReadPiece]:
    """The pieces in which to read an hour-aligned window's buckets.

    With `daily`, its whole UTC days are read from daily buckets and the partial days at its edges (under a
    day each) from hourly ones; without, everything from hourly buckets. Hourly pieces come first. With
    `brand_wide` (a request that filters on no channel or priority), every piece is read from brand-wide
    buckets, and with `months` the whole UTC months up to `rolled_through` (the last day the brand's
    monthly roll-ups reach) from monthly roll-ups.
    """
    if window.is_empty:
        return []
    days = _whole_days(window) if daily else None
    if days is None:
        hourly = [window]
    else:
        edges = (TimeWindow(window.start, days.start), TimeWindow(days.end, window.end))
        hourly = [edge for edge in edges if not edge.is_empty]
    pieces = [ReadPiece(stretch, Granularity.HOUR, brand_wide) for stretch in hourly]
    if days is None:
        return pieces
    if not brand_wide:
        return [*pieces, ReadPiece(days, Granularity.DAY)]
    rolled_end = days.start
    if rolled_through is not None and months:
        after_rolled = datetime.combine(rolled_through, datetime.min.time(), tzinfo=UTC) + DAY
        rolled_end = max(days.start, min(days.end, after_rolled))
    if rolled_end > days.start:
        pieces += _rolled_pieces(TimeWindow(days.start, rolled_end))
    if rolled_end < days.end:
        rest = TimeWindow(rolled_end, days.end)
        if pieces and pieces[-1].granularity is Granularity.DAY and pieces[-1].window.end == rolled_end:
            # Days the roll-ups reach and days after them are the same kind of item: one Query.
            rest = TimeWindow(pieces.pop().window.start, days.end)
        pieces.append(ReadPiece(rest, Granularity.DAY, brand_wide=True))
    return pieces


def _rolled_pieces(days: TimeWindow) -> list[ReadPiece]:
    """Brand-wide pieces of whole days: the whole months inside from monthly roll-ups, the rest from daily buckets."""
    first_month, after_months = _month_ceil(days.start), _month_floor(days.end)
    if first_month >= after_months:
        return [ReadPiece(days, Granularity.DAY, brand_wide=True)]
    stretches = [
        (TimeWindow(days.start, first_month), Granularity.DAY),
        (TimeWindow(first_month, after_months), Granularity.MONTH),
        (TimeWindow(after_months, days.end), Granularity.DAY),
    ]
    return [ReadPiece(stretch, granularity, True) for stretch, granularity in stretches if not stretch.is_empty]


def _month_floor(moment: datetime) -> datetime:
    return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)


def _month_ceil(moment: datetime) -> datetime:
    floor = _month_floor(moment)
    if floor == moment:
        return floor
    return (floor + timedelta(days=32)).replace(day=1)


def has_whole_days(window: TimeWindow, *, daily: bool) -> bool:
    """Whether read_plan reads any whole UTC day of the window (only those can come from monthly roll-ups)."""
    return daily and not window.is_empty and _whole_days(window) is not None


def _whole_days(window: TimeWindow) -> TimeWindow | None:
    first, last = _ceil(window.start, DAY), _floor(window.end, DAY)
    return TimeWindow(first, last) if first < last else None


def select(
    buckets: Iterable[tuple[PeriodKey, BucketTotals]], channel: str | None = None, priority: Priority | None = None
) -> Iterator[tuple[PeriodKey, BucketTotals]]:
    """The buckets of one channel and/or priority; everything (brand-wide roll-ups too) when neither is asked for."""
    for key, totals in buckets:
        if channel is None and priority is None:
            yield key, totals
        elif not isinstance(key, BucketKey):
            raise ValueError("a brand-wide roll-up cannot be split by channel or priority")
        elif (channel is None or key.channel == channel) and (priority is None or key.priority is priority):
            yield key, totals


@dataclass
class _Accumulator:
    """Counters and one clock's histogram per wait kind: what Figures are computed from."""

    clock: Clock
    counters: dict[WaitKind, Counter[str]] = field(default_factory=lambda: {kind: Counter() for kind in WaitKind})
    histograms: dict[WaitKind, LatencyHistogram] = field(
        default_factory=lambda: {kind: LatencyHistogram() for kind in WaitKind}
    )

    def add(self, key: PeriodKey, totals: BucketTotals) -> None:
        self.counters[key.kind].update(totals.counters)
        self.histograms[key.kind].merge(totals.histogram(self.clock))

    def figures(self) -> Figures:
        first, later = self.counters[WaitKind.FIRST], self.counters[WaitKind.NEXT]
        return Figures(
            mentions=first["waits"],
            responded=first["responded"],
            response_rate=_ratio(first["responded"], first["waits"]),
            first_response_seconds=latency_stats(self.histograms[WaitKind.FIRST]),
            sla=sla_stats(first),
            next_waits=later["waits"],
            next_responded=later["responded"],
            next_response_seconds=latency_stats(self.histograms[WaitKind.NEXT]),
            next_sla=sla_stats(later),
            handed_off=first["handed_off"],
            handoff_rate=_ratio(first["handed_off"], first["responded"]),
            after_handoff=later["after_handoff"],
        )


def summarize(buckets: Iterable[tuple[PeriodKey, BucketTotals]], clock: Clock) -> Figures:
    """The figures of every bucket given, merged."""
    accumulator = _Accumulator(clock)
    for key, totals in buckets:
        accumulator.add(key, totals)
    return accumulator.figures()


def recovery(buckets: Iterable[tuple[PeriodKey, BucketTotals]]) -> tuple[RecoveryFigures, list[RecoveryBand]]:
    """Recovery over every bucket given (first and next waits alike), in total and per response band (fastest first)."""
    counters: Counter[str] = Counter()
    for _, totals in buckets:
        counters.update(totals.counters)
    by_band = counts_by_band(counters)
    bands = [
        RecoveryBand(response_band=band, **recovery_figures(counts).model_dump()) for band, counts in by_band.items()
    ]
    return recovery_figures(total(by_band)), bands


def recovery_figures(counts: RecoveryCounts) -> RecoveryFigures:
    return RecoveryFigures(
        negative=counts.negative,
        followed_up=counts.followed_up,
        recovered=counts.recovered,
        no_follow_up=counts.no_follow_up,
        recovery_rate=counts.rate,
    )


def timeseries(
    buckets: Iterable[tuple[PeriodKey, BucketTotals]], clock: Clock, window: TimeWindow, interval: Interval
) -> list[TimeseriesPoint]:
    """One point per interval of an aligned window, in order; intervals without buckets are zero points.

    Hourly buckets fit either interval, daily buckets only interval=day.
    """
    step = _STEPS[interval]
    starts = _interval_starts(window, step)
    accumulators = {start: _Accumulator(clock) for start in starts}
    period_starts: dict[str, datetime] = {}
    for key, totals in buckets:
        if key.granularity.length > step:
            raise ValueError(f"a {key.granularity} bucket cannot be split into {interval} points")
        period_start = period_starts.get(key.period)
        if period_start is None:
            period_start = period_starts[key.period] = key.starts_at
        accumulator = accumulators.get(_floor(period_start, step))
        if accumulator is not None:
            accumulator.add(key, totals)
    return [
        TimeseriesPoint(from_=start, to=start + step, **accumulator.figures().model_dump())
        for start, accumulator in accumulators.items()
    ]


def check_points(window: TimeWindow, interval: Interval) -> None:
    """Refuse a time series that would have more than MAX_POINTS points."""
    step = _STEPS[interval]
    points = (_ceil(window.end, step) - _floor(window.start, step)) // step
    if points > MAX_POINTS:
        raise WindowError(
            f"{points} {interval.value}ly points asked for, at most {MAX_POINTS}: use a shorter window or interval=day",
            "interval",
        )


def distribution(histogram: LatencyHistogram) -> list[DistributionBand]:
    """Counts of latencies per band; a bin goes to the band of its representative value (within 1%)."""
    counts = [0] * len(DISTRIBUTION_BANDS)
    if not histogram.has_negative_counts:
        counts[0] += histogram.zero_count
        for index, count in histogram.bins.items():
            counts[_band_of(LatencyHistogram.bin_value(index))] += count
    total = sum(counts)
    bands = []
    lower = 0.0
    for (label, upper), count in zip(DISTRIBUTION_BANDS, counts, strict=True):
        bands.append(
            DistributionBand(
                label=label, above_seconds=lower, up_to_seconds=upper, count=count, share=_ratio(count, total)
            )
        )
        lower = upper if upper is not None else lower
    return bands


def first_response_histogram(buckets: Iterable[tuple[PeriodKey, BucketTotals]], clock: Clock) -> LatencyHistogram:
    histogram = LatencyHistogram()
    for key, totals in buckets:
        if key.kind is WaitKind.FIRST:
            histogram.merge(totals.histogram(clock))
    return histogram


def latency_stats(histogram: LatencyHistogram) -> LatencyStats:
    # A histogram with negative counts is a half-applied delta, never a stored total: report nothing rather than
    # fail the request or invent numbers.
    if histogram.has_negative_counts or histogram.count == 0:
        return LatencyStats(count=0, mean=None, p50=None, p90=None, p95=None, p99=None, max=None)
    quantiles = {name: _seconds(histogram.quantile(q)) for name, q in QUANTILES}
    return LatencyStats(
        count=histogram.count,
        mean=_seconds(histogram.mean),
        p50=quantiles["p50"],
        p90=quantiles["p90"],
        p95=quantiles["p95"],
        p99=quantiles["p99"],
        max=_seconds(histogram.max),
    )


def sla_stats(counters: Counter[str]) -> SLAStats:
    met, breached = counters["met"], counters["breached"]
    return SLAStats(
        met=met,
        breached=breached,
        pending=counters["waits"] - met - breached,
        at_risk=counters["at_risk"],
        compliance=_ratio(met, met + breached),
    )


def _band_of(value: float) -> int:
    for position, (_, upper) in enumerate(DISTRIBUTION_BANDS):
        if upper is None or value <= upper:
            return position
    raise AssertionError("unreachable: the last band has no upper bound")


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole > 0 else None


def _seconds(value: float | None) -> float | None:
    return None if value is None else round(value, 3)


def _floor(moment: datetime, step: timedelta) -> datetime:
    epoch = datetime(1970, 1, 1, tzinfo=UTC)
    return epoch + ((moment - epoch) // step) * step


def _ceil(moment: datetime, step: timedelta) -> datetime:
    floor = _floor(moment, step)
    return floor if floor == moment else floor + step


def _interval_starts(window: TimeWindow, step: timedelta) -> list[datetime]:
    starts = []
    moment = _floor(window.start, step)
    while moment < window.end:
        starts.append(moment)
        moment += step
    return starts
