"""A mergeable, log-bucketed latency histogram (DDSketch-like) with at most 1% relative error on any quantile.

Bins are plain ints keyed by a non-negative int index, so a histogram can be stored as counters and updated with
additive deltas ("new minus old"); merging is adding counts, which makes it order-independent.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import ClassVar, Self


class LatencyHistogram:
    """Counts of latencies (seconds, >= 0) in bins whose width grows with the value, ~2% per bin."""

    RELATIVE_ACCURACY: ClassVar[float] = 0.01
    GAMMA: ClassVar[float] = (1 + RELATIVE_ACCURACY) / (1 - RELATIVE_ACCURACY)
    # Smaller values (sub-millisecond latencies) share one bin reported as 0.
    MIN_INDEXABLE: ClassVar[float] = 1e-3
    # ceil(log(1e-3) / log(GAMMA)) is -345 and ceil(log(1e9) / log(GAMMA)) is 1037, so shifting by 345 puts every
    # value from a millisecond to ~31 years in bins 0..1382; larger values still get (larger) non-negative indices.
    OFFSET: ClassVar[int] = 345
    _LOG_GAMMA: ClassVar[float] = math.log(GAMMA)

    __slots__ = ("bins", "zero_count", "total", "_min", "_max")

    def __init__(self) -> None:
        self.bins: dict[int, int] = {}
        self.zero_count: int = 0
        self.total: float = 0.0
        # None means "not known exactly" (or no values); the properties then fall back to the outermost bins.
        self._min: float | None = None
        self._max: float | None = None

    @classmethod
    def bin_index(cls, value: float) -> int:
        """The shifted bin index of a value >= MIN_INDEXABLE."""
        return math.ceil(math.log(value) / cls._LOG_GAMMA) + cls.OFFSET

    @classmethod
    def bin_value(cls, index: int) -> float:
        """The representative value of a shifted bin: within RELATIVE_ACCURACY of everything in it."""
        return 2 * cls.GAMMA ** (index - cls.OFFSET) / (cls.GAMMA + 1)

    @classmethod
    def from_values(cls, values: list[float] | tuple[float, ...]) -> Self:
        histogram = cls()
        for value in values:
            histogram.add(value)
        return histogram

    @classmethod
    def from_bins(cls, bins: Mapping[int, int], zero_count: int, total: float) -> Self:
        """Rebuild from stored counters; min and max are then only known to bin precision."""
        histogram = cls()
        # int()/float() also turn DynamoDB's Decimal counters into plain numbers.
        histogram.bins = {int(index): int(count) for index, count in bins.items() if int(count) != 0}
        histogram.zero_count = int(zero_count)
        histogram.total = float(total)
        return histogram

    def to_bins(self) -> tuple[dict[int, int], int, float]:
        """(bins, zero_count, total) for storage; the inverse of from_bins."""
        return dict(self.bins), self.zero_count, self.total

    def copy(self) -> LatencyHistogram:
        duplicate = LatencyHistogram()
        duplicate.bins = dict(self.bins)
        duplicate.zero_count = self.zero_count
        duplicate.total = self.total
        duplicate._min = self._min
        duplicate._max = self._max
        return duplicate

    @property
    def count(self) -> int:
        return self.zero_count + sum(self.bins.values())

    @property
    def is_empty(self) -> bool:
        return self.zero_count == 0 and not self.bins

    @property
    def has_negative_counts(self) -> bool:
        """True for a delta (or a partly applied one), whose quantiles and bounds mean nothing."""
        return self.zero_count < 0 or any(count < 0 for count in self.bins.values())

    @property
    def mean(self) -> float | None:
        count = self.count
        return self.total / count if count > 0 else None

    @property
    def min(self) -> float | None:
        """Exact when known, else the lowest non-empty bin's value; None when empty or a delta."""
        if self._min is not None:
            return self._min
        if self.has_negative_counts:
            return None
        if self.zero_count != 0:
            return 0.0
        return self.bin_value(min(self.bins)) if self.bins else None

    @property
    def max(self) -> float | None:
        """Exact when known, else the highest non-empty bin's value; None when empty or a delta."""
        if self._max is not None:
            return self._max
        if self.has_negative_counts:
            return None
        if self.bins:
            return self.bin_value(max(self.bins))
        return 0.0 if self.zero_count != 0 else None

    def add(self, value: float, count: int = 1) -> None:
        """Record `count` occurrences of a latency of `value` seconds."""
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"latency must be a finite number >= 0, got {value!r}")
        if count < 0:
            raise ValueError(f"count must be >= 0 (use negated() for deltas), got {count}")
        if count == 0:
            return
        was_empty = self.is_empty
        if value < self.MIN_INDEXABLE:
            self.zero_count += count
        else:
            self._add_to_bin(self.bin_index(value), count)
        self.total += value * count
        if was_empty:
            self._min = self._max = value
        elif self._min is not None and self._max is not None:
            self._min = min(self._min, value)
            self._max = max(self._max, value)

    def merge(self, other: LatencyHistogram) -> None:
        """Add other's counts into this histogram (in place)."""
        if other.is_empty and other.total == 0:
            return
        self._min = _merged_bound(self, self._min, other, other._min, min)
        self._max = _merged_bound(self, self._max, other, other._max, max)
        for index, count in other.bins.items():
            self._add_to_bin(index, count)
        self.zero_count += other.zero_count
        self.total += other.total
        if self.is_empty:
            self._min = self._max = None

    def __add__(self, other: LatencyHistogram) -> LatencyHistogram:
        result = self.copy()
        result.merge(other)
        return result

    def negated(self) -> LatencyHistogram:
        """Every count and the total negated, so `new + old.negated()` is the delta that turns old into new."""
        negative = LatencyHistogram()
        negative.bins = {index: -count for index, count in self.bins.items()}
        negative.zero_count = -self.zero_count
        negative.total = -self.total
        return negative

    def quantile(self, q: float) -> float | None:
        """The nearest-rank q-quantile (the value at rank max(1, ceil(q * count))), within 1%; None when empty."""
        if not 0 <= q <= 1:
            raise ValueError(f"quantile must be in [0, 1], got {q!r}")
        if self.has_negative_counts:
            raise ValueError("a histogram with negative counts is a delta; apply it before asking for quantiles")
        count = self.count
        if count == 0:
            return None
        rank = max(1, math.ceil(q * count))
        if rank <= self.zero_count:
            return 0.0
        seen = self.zero_count
        for index in sorted(self.bins):
            seen += self.bins[index]
            if seen >= rank:
                return self._clamped(self.bin_value(index))
        raise AssertionError("unreachable: rank <= count")

    def __repr__(self) -> str:
        return (
            f"LatencyHistogram(count={self.count}, zero_count={self.zero_count}, total={self.total!r}, "
            f"min={self.min!r}, max={self.max!r}, bins={len(self.bins)})"
        )

    def _add_to_bin(self, index: int, count: int) -> None:
        updated = self.bins.get(index, 0) + count
        if updated == 0:
            self.bins.pop(index, None)
        else:
            self.bins[index] = updated

    def _clamped(self, value: float) -> float:
        if self._min is not None:
            value = max(value, self._min)
        if self._max is not None:
            value = min(value, self._max)
        return value


def _merged_bound(
    mine: LatencyHistogram,
    my_bound: float | None,
    theirs: LatencyHistogram,
    their_bound: float | None,
    pick: Callable[[float, float], float],
) -> float | None:
    # An exact bound survives a merge only if both sides know theirs; an empty side has nothing to contribute.
    if mine.is_empty:
        return their_bound
    if theirs.is_empty:
        return my_bound
    if my_bound is None or their_bound is None:
        return None
    return pick(my_bound, their_bound)
