"""Aggregate buckets and the exact deltas that conversation-state changes make to them.

A bucket sums the waits of one (brand, channel, priority, kind) that started in one
UTC hour, or in one UTC day (a daily roll-up: the sum of that day's hourly buckets):
counters plus a latency histogram per clock. Buckets are only ever changed by adding
deltas (DynamoDB ADD), so buckets from any periods, channels or shards merge by addition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from enum import StrEnum

from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.recovery import RECOVERY_COUNTER_NAMES, recovery_counters
from replyclock.models.domain import Clock, ConversationState, Priority, Wait, WaitKind, WaitStatus

# New counters go at the end: packed roll-ups (dal.rollups) list them in this order, and older items hold fewer.
COUNTER_NAMES = (
    "waits",
    "responded",
    "met",
    "breached",
    "at_risk",
    "open",
    "handed_off",
    "after_handoff",
    *RECOVERY_COUNTER_NAMES,
)


class Granularity(StrEnum):
    """The length of a bucket's period: a UTC hour, a UTC day, or (brand-wide roll-ups only) a UTC month."""

    HOUR = "hour"
    DAY = "day"
    MONTH = "month"

    @property
    def length(self) -> timedelta:
        """The period's length; for a month, its longest (31 days)."""
        return _LENGTHS[self]

    def label(self, moment: datetime) -> str:
        """The period that holds a moment: "YYYY-MM-DDTHH" for an hour, "YYYY-MM-DD" a day, "YYYY-MM" a month (UTC)."""
        return moment.astimezone(UTC).strftime(_LABEL_FORMATS[self])

    def start_of(self, label: str) -> datetime:
        return datetime.strptime(label, _LABEL_FORMATS[self]).replace(tzinfo=UTC)


_LENGTHS = {
    Granularity.HOUR: timedelta(hours=1),
    Granularity.DAY: timedelta(days=1),
    Granularity.MONTH: timedelta(days=31),
}
_LABEL_FORMATS = {Granularity.HOUR: "%Y-%m-%dT%H", Granularity.DAY: "%Y-%m-%d", Granularity.MONTH: "%Y-%m"}


def hour_of(moment: datetime) -> str:
    return Granularity.HOUR.label(moment)


@dataclass(frozen=True, order=True)
class BucketKey:
    brand_id: str
    period: str  # the UTC hour ("YYYY-MM-DDTHH") or day ("YYYY-MM-DD") its waits started in
    kind: WaitKind
    channel: str
    priority: Priority
    granularity: Granularity = Granularity.HOUR

    @classmethod
    def of(cls, wait: Wait) -> BucketKey:
        """The hourly bucket of a wait."""
        return cls(wait.brand_id, hour_of(wait.started_at), wait.kind, wait.channel, wait.priority)

    @property
    def starts_at(self) -> datetime:
        return self.granularity.start_of(self.period)

    def day(self) -> BucketKey:
        """The daily bucket this bucket rolls up into (itself for a daily bucket)."""
        return replace(self, period=self.period[:10], granularity=Granularity.DAY)


@dataclass(frozen=True, order=True)
class RollupKey:
    """A brand-wide roll-up: the sum of every channel's and priority's buckets of one kind over a UTC hour, day
    or month."""

    brand_id: str
    period: str  # "YYYY-MM-DDTHH", "YYYY-MM-DD" or "YYYY-MM"
    kind: WaitKind
    granularity: Granularity

    @classmethod
    def of(cls, bucket: BucketKey) -> RollupKey:
        """The brand-wide roll-up a bucket of one channel and priority adds to."""
        return cls(bucket.brand_id, bucket.period, bucket.kind, bucket.granularity)

    @property
    def starts_at(self) -> datetime:
        return self.granularity.start_of(self.period)

    def day(self) -> RollupKey:
        return replace(self, period=self.period[:10], granularity=Granularity.DAY)


# What metrics fold: a bucket of one channel and priority, or a brand-wide roll-up.
PeriodKey = BucketKey | RollupKey


@dataclass
class BucketTotals:
    """Counters and latency histograms of a set of waits (or a signed difference of two sets)."""

    counters: Counter[str] = field(default_factory=Counter)
    calendar: LatencyHistogram = field(default_factory=LatencyHistogram)
    business: LatencyHistogram = field(default_factory=LatencyHistogram)

    @classmethod
    def of_wait(cls, wait: Wait) -> BucketTotals:
        totals = cls()
        totals.counters["waits"] = 1
        if wait.is_open:
            totals.counters["open"] = 1
        else:
            totals.counters["responded"] = 1
            if wait.handed_off:
                totals.counters["handed_off"] = 1
            totals.calendar.add(wait.calendar_seconds or 0.0)
            totals.business.add(wait.business_seconds or 0.0)
        if wait.after_handoff:
            totals.counters["after_handoff"] = 1
        totals.counters.update(recovery_counters(wait))
        if wait.status is WaitStatus.MET:
            totals.counters["met"] = 1
        elif wait.status is WaitStatus.BREACHED:
            totals.counters["breached"] = 1
        elif wait.status is WaitStatus.AT_RISK:
            totals.counters["at_risk"] = 1
        return totals

    def histogram(self, clock: Clock) -> LatencyHistogram:
        return self.calendar if clock is Clock.CALENDAR else self.business

    def merge(self, other: BucketTotals) -> None:
        self.counters.update(other.counters)
        self.calendar.merge(other.calendar)
        self.business.merge(other.business)

    def negated(self) -> BucketTotals:
        return BucketTotals(
            counters=Counter({name: -value for name, value in self.counters.items()}),
            calendar=self.calendar.negated(),
            business=self.business.negated(),
        )

    @property
    def is_zero(self) -> bool:
        no_counts = all(value == 0 for value in self.counters.values())
        return no_counts and _histogram_is_zero(self.calendar) and _histogram_is_zero(self.business)


def _histogram_is_zero(histogram: LatencyHistogram) -> bool:
    bins, zero_count, total = histogram.to_bins()
    return zero_count == 0 and total == 0 and not any(bins.values())


def totals_by_bucket(waits: Iterable[Wait]) -> dict[BucketKey, BucketTotals]:
    buckets: dict[BucketKey, BucketTotals] = {}
    for wait in waits:
        buckets.setdefault(BucketKey.of(wait), BucketTotals()).merge(BucketTotals.of_wait(wait))
    return buckets


def state_delta(old: ConversationState | None, new: ConversationState | None) -> dict[BucketKey, BucketTotals]:
    """What a state change adds to each bucket: totals of the new waits minus those of the old ones."""
    deltas = totals_by_bucket(new.waits if new else [])
    for key, old_totals in totals_by_bucket(old.waits if old else []).items():
        deltas.setdefault(key, BucketTotals()).merge(old_totals.negated())
    return {key: delta for key, delta in deltas.items() if not delta.is_zero}


def rolled_up(buckets: Mapping[BucketKey, BucketTotals]) -> dict[BucketKey, BucketTotals]:
    """Hourly totals (or deltas) summed per daily bucket; sums that cancel out (a wait moved within its day) drop."""
    days: dict[BucketKey, BucketTotals] = {}
    for key, totals in buckets.items():
        days.setdefault(key.day(), BucketTotals()).merge(totals)
    return {key: totals for key, totals in days.items() if not totals.is_zero}
