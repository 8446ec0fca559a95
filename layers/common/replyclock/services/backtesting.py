"""Backtest: each brand's summary over an export, computed in-process with the measuring path's own domain.

No table, stream or HTTP call, so nothing times out and nothing depends on the machine's load:
conversations are folded whole with logic.waits as measure folds them, their waits summed into
hourly buckets with logic.aggregation as aggregate sums them, and each brand's buckets summarized
with logic.metrics as GET /metrics/summary does. As in the local stack's replay, no sweeper runs:
an unanswered wait stays pending.

Buckets merge by addition, so the work splits by conversation: `workers` processes each fold a
share of the conversations and their buckets are summed, with the same result as one process
(the same split would run a larger export as parallel Lambda invocations over S3).
"""

from __future__ import annotations

import zlib
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field

from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketKey, BucketTotals, totals_by_bucket
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.waits import brands_in_conversation, compute_waits, placed_conversation
from replyclock.models.api import SummaryResponse
from replyclock.models.domain import Brand, Clock, Post
from replyclock.services.measuring import BrandDirectory, directory_from

Buckets = dict[BucketKey, BucketTotals]


@dataclass
class BacktestResult:
    """Each brand's summary over the window, and the brands whose summary failed (with why)."""

    summaries: dict[str, SummaryResponse] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)


def conversation_buckets(posts: Iterable[Post], brands: BrandDirectory) -> Buckets:
    """The hourly buckets every brand's waits in these posts' conversations make."""
    threads: dict[tuple[str, str], list[Post]] = defaultdict(list)
    for post in posts:
        threads[(post.channel, post.conversation_id)].append(post)
    buckets: Buckets = defaultdict(BucketTotals)
    for thread in threads.values():
        placed = placed_conversation(thread, brands.brand_for_handle)
        for brand_id in sorted(brands_in_conversation(placed, brands.brand_for_handle)):
            for waits in compute_waits(thread, brands.get(brand_id), brands.brand_for_handle).values():
                for key, totals in totals_by_bucket(waits).items():
                    buckets[key].merge(totals)
    return dict(buckets)


def as_stored(totals: BucketTotals) -> BucketTotals:
    """The totals as a stored bucket holds them: histograms as bins only (no exact extremes), as the API reads."""
    return BucketTotals(
        counters=totals.counters,
        calendar=LatencyHistogram.from_bins(*totals.calendar.to_bins()),
        business=LatencyHistogram.from_bins(*totals.business.to_bins()),
    )


def _share_buckets(share: tuple[list[Post], list[Brand]]) -> Buckets:
    posts, brands = share
    return conversation_buckets(posts, directory_from(brands))


def shares(posts: Iterable[Post], count: int) -> list[list[Post]]:
    """The posts split in `count` shares, each conversation whole in one of them."""
    split: list[list[Post]] = [[] for _ in range(count)]
    for post in posts:
        split[zlib.crc32(f"{post.channel}#{post.conversation_id}".encode()) % count].append(post)
    return split


def backtest(
    posts: Sequence[Post], brands: list[Brand], window: metrics.TimeWindow, *, workers: int = 1
) -> BacktestResult:
    """Every brand's first- and next-response summary over the window (calendar clock)."""
    buckets: Buckets = defaultdict(BucketTotals)
    if workers == 1:
        parts = [conversation_buckets(posts, directory_from(brands))]
    else:
        with ProcessPoolExecutor(max_workers=workers) as pool:
            parts = list(pool.map(_share_buckets, [(share, brands) for share in shares(posts, workers)]))
    for part in parts:
        for key, totals in part.items():
            buckets[key].merge(totals)
    by_brand: dict[str, list[tuple[BucketKey, BucketTotals]]] = defaultdict(list)
    for key, totals in buckets.items():
        if window.start <= key.starts_at < window.end:
            by_brand[key.brand_id].append((key, as_stored(totals)))
    result = BacktestResult()
    for brand in sorted(brands, key=lambda brand: brand.id):
        try:
            figures = metrics.summarize(by_brand.get(brand.id, []), Clock.CALENDAR)
            result.summaries[brand.id] = SummaryResponse(
                brand=brand.id,
                channel=None,
                priority=None,
                clock=Clock.CALENDAR,
                window=window.to_model(),
                **figures.model_dump(),
            )
        except (ValueError, ArithmeticError) as error:
            result.failures[brand.id] = str(error)
    return result
