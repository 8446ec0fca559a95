"""Specification of LatencyHistogram: a mergeable log-bucketed histogram with 1% relative quantile error."""

from __future__ import annotations

import math
import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.logic.histogram import LatencyHistogram

# Float rounding at a bin boundary may land a hair over the 1% bound.
TOLERANCE = LatencyHistogram.RELATIVE_ACCURACY + 1e-9


def exact_quantile(values: list[float], q: float) -> float:
    """Nearest-rank quantile: the value at rank ceil(q * n), at least 1."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


def assert_close(estimate: float | None, exact: float) -> None:
    """Within 1% relative, or reported as 0 for values in the zero bin."""
    assert estimate is not None
    if exact < LatencyHistogram.MIN_INDEXABLE:
        assert estimate == pytest.approx(0.0, abs=LatencyHistogram.MIN_INDEXABLE)
    else:
        assert abs(estimate - exact) <= TOLERANCE * exact, (estimate, exact)


def lognormal_latencies(count: int, seed: int) -> list[float]:
    rng = random.Random(seed)
    return [rng.lognormvariate(mu=7, sigma=1.5) for _ in range(count)]


def assert_same_histogram(left: LatencyHistogram, right: LatencyHistogram) -> None:
    assert left.bins == right.bins
    assert left.zero_count == right.zero_count
    assert left.count == right.count
    assert left.total == pytest.approx(right.total, rel=1e-12)
    assert left.min == right.min
    assert left.max == right.max


LATENCIES = lognormal_latencies(100_000, seed=20261120)
LATENCY_HISTOGRAM = LatencyHistogram.from_values(LATENCIES)

latency_values = st.one_of(
    st.floats(min_value=0, max_value=1e9, allow_nan=False, allow_infinity=False),
    st.floats(min_value=1e-4, max_value=1e5),
    st.sampled_from([0.0, 1e-3, 1.0, 60.0]),
)
latency_lists = st.lists(latency_values, max_size=200)


# --- binning ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected_index"),
    [pytest.param(1e-3, 0, id="smallest indexable value is bin 0"), pytest.param(1e9, 1382, id="a billion seconds")],
)
def test_the_offset_makes_every_index_from_a_millisecond_up_non_negative(value: float, expected_index: int) -> None:
    assert LatencyHistogram.OFFSET == 345
    assert LatencyHistogram.bin_index(value) == expected_index


@pytest.mark.parametrize("value", [1e-3, 0.0123, 1.0, 59.9, 3600.0, 86_400.5, 1e9])
def test_a_bin_represents_its_values_within_one_percent(value: float) -> None:
    representative = LatencyHistogram.bin_value(LatencyHistogram.bin_index(value))

    assert abs(representative - value) <= TOLERANCE * value


@pytest.mark.parametrize("value", [0.0, 1e-9, 0.000999])
def test_values_below_a_millisecond_go_to_the_zero_bin_and_report_as_zero(value: float) -> None:
    histogram = LatencyHistogram()

    histogram.add(value)

    assert histogram.zero_count == 1
    assert histogram.bins == {}
    assert histogram.quantile(0.5) == 0.0


def test_count_is_the_zero_bin_plus_all_bins() -> None:
    histogram = LatencyHistogram.from_values([0.0, 0.0005, 1.0, 1.0, 2.5, 1000.0])
    histogram.add(30.0, count=4)

    assert histogram.count == histogram.zero_count + sum(histogram.bins.values()) == 10


@pytest.mark.parametrize("value", [-0.1, float("nan"), float("inf")])
def test_negative_or_non_finite_latencies_are_rejected(value: float) -> None:
    with pytest.raises(ValueError, match="finite number >= 0"):
        LatencyHistogram().add(value)


def test_adding_with_a_count_records_that_many_occurrences() -> None:
    histogram = LatencyHistogram()

    histogram.add(12.0, count=3)

    assert histogram.count == 3
    assert histogram.total == 36.0
    assert histogram.bins == {LatencyHistogram.bin_index(12.0): 3}


# --- quantiles --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [0.5, 0.9, 0.95, 0.99, 1.0])
def test_quantiles_of_lognormal_latencies_are_within_one_percent(q: float) -> None:
    assert_close(LATENCY_HISTOGRAM.quantile(q), exact_quantile(LATENCIES, q))


def test_min_max_count_and_mean_of_added_values_are_exact() -> None:
    assert LATENCY_HISTOGRAM.min == min(LATENCIES)
    assert LATENCY_HISTOGRAM.max == max(LATENCIES)
    assert LATENCY_HISTOGRAM.count == len(LATENCIES)
    assert LATENCY_HISTOGRAM.mean == pytest.approx(sum(LATENCIES) / len(LATENCIES), rel=1e-12)


@pytest.mark.parametrize(
    ("q", "expected"),
    [
        pytest.param(0.0, 10.0, id="q=0 is the first value"),
        pytest.param(0.25, 10.0, id="rank 1 of 4"),
        pytest.param(0.26, 20.0, id="rank rounds up"),
        pytest.param(0.5, 20.0, id="median is rank 2 of 4"),
        pytest.param(1.0, 40.0, id="q=1 is the last value"),
    ],
)
def test_quantiles_use_nearest_rank(q: float, expected: float) -> None:
    histogram = LatencyHistogram.from_values([40.0, 10.0, 30.0, 20.0])

    assert histogram.quantile(q) == pytest.approx(expected, rel=LatencyHistogram.RELATIVE_ACCURACY)


def test_quantiles_are_clamped_to_the_exact_min_and_max() -> None:
    histogram = LatencyHistogram.from_values([100.0, 100.0, 100.0])

    assert histogram.quantile(0.0) == histogram.quantile(1.0) == 100.0


def test_an_empty_histogram_has_no_quantile_mean_min_or_max() -> None:
    histogram = LatencyHistogram()

    assert histogram.is_empty
    assert histogram.count == 0
    assert (histogram.quantile(0.5), histogram.mean, histogram.min, histogram.max) == (None, None, None, None)


@pytest.mark.parametrize("q", [-0.01, 1.01, float("nan")])
def test_a_quantile_outside_zero_to_one_is_rejected(q: float) -> None:
    with pytest.raises(ValueError, match="quantile must be in"):
        LATENCY_HISTOGRAM.quantile(q)


def test_a_delta_with_negative_counts_has_no_quantiles() -> None:
    delta = LatencyHistogram.from_values([5.0]).negated()

    with pytest.raises(ValueError, match="negative counts"):
        delta.quantile(0.5)


# --- merging and deltas -----------------------------------------------------------------------------------------


def test_merging_two_histograms_equals_the_histogram_of_the_union() -> None:
    # Given two halves of a data set, each with some sub-millisecond values
    first, second = lognormal_latencies(5_000, seed=1) + [0.0], lognormal_latencies(7_000, seed=2) + [1e-4]

    # When their histograms are merged in place
    merged = LatencyHistogram.from_values(first)
    merged.merge(LatencyHistogram.from_values(second))

    # Then it is the histogram of all values
    assert_same_histogram(merged, LatencyHistogram.from_values(first + second))


def test_the_plus_operator_merges_into_a_new_histogram() -> None:
    left, right = LatencyHistogram.from_values([1.0, 2.0]), LatencyHistogram.from_values([3.0])

    combined = left + right

    assert_same_histogram(combined, LatencyHistogram.from_values([1.0, 2.0, 3.0]))
    assert left.count == 2 and right.count == 1


def test_merging_a_histogram_with_its_negation_leaves_it_empty() -> None:
    # Given a histogram of latencies
    histogram = LatencyHistogram.from_values(LATENCIES[:1000] + [0.0])

    # When its negation is applied as a delta
    histogram.merge(histogram.negated())

    # Then nothing is left
    assert histogram.is_empty
    assert histogram.bins == {}
    assert histogram.count == 0 == histogram.zero_count
    assert histogram.total == pytest.approx(0.0, abs=1e-6)
    assert histogram.min is None and histogram.max is None


def test_negation_flips_every_count_and_the_total() -> None:
    histogram = LatencyHistogram.from_values([0.0, 2.0, 2.0, 50.0])

    negative = histogram.negated()

    assert negative.bins == {index: -count for index, count in histogram.bins.items()}
    assert negative.zero_count == -1
    assert negative.count == -4
    assert negative.total == -54.0
    assert negative.has_negative_counts
    assert negative.min is None and negative.max is None


def test_a_stored_histogram_updated_by_a_delta_becomes_the_new_histogram() -> None:
    # Given the stored counters of an old histogram, and a new histogram replacing it
    old = LatencyHistogram.from_values([1.0, 5.0, 5.0, 300.0])
    new = LatencyHistogram.from_values([1.0, 5.0, 7.0, 300.0, 0.0])
    stored = LatencyHistogram.from_bins(*old.to_bins())

    # When the delta "new minus old" is added to the stored counters
    stored.merge(new + old.negated())

    # Then the stored counters equal the new histogram's
    bins, zero_count, total = stored.to_bins()
    assert (bins, zero_count) == (new.bins, new.zero_count)
    assert total == pytest.approx(new.total)


def test_a_histogram_rebuilt_from_bins_reports_min_and_max_from_its_outer_bins() -> None:
    # Given a histogram stored as bins, which loses the exact min and max
    rebuilt = LatencyHistogram.from_bins(*LATENCY_HISTOGRAM.to_bins())

    # Then min and max are still within 1%, and the quantiles unchanged apart from clamping
    assert rebuilt.min is not None and rebuilt.max is not None
    assert abs(rebuilt.min - min(LATENCIES)) <= TOLERANCE * min(LATENCIES)
    assert abs(rebuilt.max - max(LATENCIES)) <= TOLERANCE * max(LATENCIES)
    assert rebuilt.count == LATENCY_HISTOGRAM.count
    assert_close(rebuilt.quantile(0.99), exact_quantile(LATENCIES, 0.99))


def test_a_rebuilt_histogram_with_zero_bin_values_reports_a_min_of_zero() -> None:
    rebuilt = LatencyHistogram.from_bins(*LatencyHistogram.from_values([0.0002, 4.0]).to_bins())

    assert rebuilt.min == 0.0


def test_from_bins_drops_zero_counts_and_accepts_stored_number_types() -> None:
    rebuilt = LatencyHistogram.from_bins({400: 2, 401: 0}, zero_count=1, total=12.5)

    assert rebuilt.bins == {400: 2}
    assert rebuilt.count == 3
    assert rebuilt.to_bins() == ({400: 2}, 1, 12.5)


# --- properties -------------------------------------------------------------------------------------------------


@settings(max_examples=300)
@given(values=latency_lists.filter(bool), q=st.floats(min_value=0, max_value=1))
def test_every_quantile_is_within_one_percent(values: list[float], q: float) -> None:
    assert_close(LatencyHistogram.from_values(values).quantile(q), exact_quantile(values, q))


@settings(max_examples=200)
@given(first=latency_lists, second=latency_lists, third=latency_lists)
def test_merge_order_does_not_matter(first: list[float], second: list[float], third: list[float]) -> None:
    a, b, c = (LatencyHistogram.from_values(values) for values in (first, second, third))

    assert_same_histogram(a + b, b + a)
    assert_same_histogram((a + b) + c, a + (b + c))
    assert_same_histogram(a + b + c, LatencyHistogram.from_values(first + second + third))
