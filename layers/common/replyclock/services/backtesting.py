"""Backtest: each brand's summary over an export, computed in-process with the measuring path's own domain.

No table, stream or HTTP call, so nothing times out and nothing depends on the machine's load:
conversations are folded whole with logic.waits as measure folds them, their waits summed into
hourly buckets with logic.aggregation as aggregate sums them, and each brand's buckets summarized
with logic.metrics as GET /metrics/summary does. As in the local stack's replay, no sweeper runs:
an unanswered wait stays pending.

The export is streamed, so memory does not grow with its posts: a first pass reads only each post's
parent (to find conversation roots), the brands and the span; a second writes every post, with its
root, to one of several partition files by conversation; each partition is then folded on its own.
Buckets merge by addition, so partitions can be folded by `workers` processes (or, the same split,
by parallel Lambda invocations over S3) with the same result as one.
"""

from __future__ import annotations

import csv
import json
import math
import tempfile
import zlib
from collections import defaultdict
from collections.abc import Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO

from pydantic import ValidationError

from replyclock.connectors import twcs
from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketKey, BucketTotals, totals_by_bucket
from replyclock.logic.histogram import LatencyHistogram
from replyclock.logic.sentiment import scored
from replyclock.logic.waits import brands_in_conversation, fold_conversation, placed_conversation
from replyclock.models.api import RecoveryResponse, SummaryResponse
from replyclock.models.domain import Brand, Clock, Post, SLAPolicy, SLATargets
from replyclock.services.measuring import BrandDirectory, directory_from

# Posts per partition: what one process holds in memory at a time.
PARTITION_POSTS = 20_000

Buckets = dict[BucketKey, BucketTotals]


@dataclass
class BacktestResult:
    """Each brand's summary over the window, and the brands whose summary failed (with why)."""

    summaries: dict[str, SummaryResponse] = field(default_factory=dict)
    failures: dict[str, str] = field(default_factory=dict)
    # As GET /metrics/recovery answers it, per brand.
    recoveries: dict[str, RecoveryResponse] = field(default_factory=dict)


def conversation_buckets(posts: Iterable[Post], brands: BrandDirectory) -> Buckets:
    """The hourly buckets every brand's waits in these posts' conversations make."""
    threads: dict[tuple[str, str], list[Post]] = defaultdict(list)
    for post in posts:
        threads[(post.channel, post.conversation_id)].append(post)
    buckets: Buckets = defaultdict(BucketTotals)
    for thread in threads.values():
        placed = placed_conversation(thread, brands.brand_for_handle)
        for brand_id in sorted(brands_in_conversation(placed, brands.brand_for_handle)):
            # As compute_waits, on the conversation placed once for all its brands.
            fold = fold_conversation(placed, brands.get(brand_id), brands.brand_for_handle)
            for lane in fold.lanes.values():
                for key, totals in totals_by_bucket(lane.waits()).items():
                    buckets[key].merge(totals)
    return dict(buckets)


def as_stored(totals: BucketTotals) -> BucketTotals:
    """The totals as a stored bucket holds them: histograms as bins only (no exact extremes), as the API reads."""
    return BucketTotals(
        counters=totals.counters,
        calendar=LatencyHistogram.from_bins(*totals.calendar.to_bins()),
        business=LatencyHistogram.from_bins(*totals.business.to_bins()),
    )


class NotAnExport(ValueError):
    """The file as a whole is not an export of the format asked for."""


# How many rejected lines' reasons an export's facts keep.
MAX_REASONS = 3


@dataclass
class ExportFacts:
    """What the first pass learns: each post's conversation root, the brands, the span, what was rejected."""

    roots: dict[str, str] = field(default_factory=dict)
    brand_ids: set[str] = field(default_factory=set)
    deleted: set[str] = field(default_factory=set)
    posts: int = 0
    rejected: int = 0
    # The first rejected lines' reasons ("line 12: created_at: ..."), for the console.
    reasons: list[str] = field(default_factory=list)
    first: datetime | None = None
    last: datetime | None = None

    def reject(self, where: str, reason: str) -> None:
        self.rejected += 1
        if len(self.reasons) < MAX_REASONS:
            self.reasons.append(f"{where}: {' '.join(reason.split())[:160]}")

    def saw(self, post_time: datetime) -> None:
        self.posts += 1
        self.first = post_time if self.first is None else min(self.first, post_time)
        self.last = post_time if self.last is None else max(self.last, post_time)

    @property
    def window(self) -> metrics.TimeWindow:
        """Whole UTC hours covering every post."""
        if self.first is None or self.last is None:
            raise NotAnExport("the file holds no post")
        hour = timedelta(hours=1)
        return metrics.aligned(metrics.TimeWindow(self.first, self.last + timedelta(microseconds=1)), hour)


@dataclass
class BacktestOutcome:
    facts: ExportFacts
    result: BacktestResult
    # Every brand's hourly buckets over the export (for reports that go beyond the summary).
    buckets: Buckets = field(default_factory=dict)


def uniform_policy_brands(brand_ids: Iterable[str], sla_seconds: int) -> list[Brand]:
    """Each brand with one calendar-clock policy of `sla_seconds` for every priority."""
    targets = SLATargets(urgent=sla_seconds, high=sla_seconds, normal=sla_seconds, low=sla_seconds)
    policy = SLAPolicy(version=1, targets=targets, clock=Clock.CALENDAR)
    return [Brand(id=brand_id, name=brand_id, sla_policies=[policy]) for brand_id in sorted(set(brand_ids))]


def backtest_export(path: Path, kind: str, sla_seconds: int, *, workers: int = 1) -> BacktestOutcome:
    """Every brand's summary over the export's whole span; `kind` is "twcs" or "jsonl"."""
    facts = _first_pass(path, kind)
    window = facts.window
    brands = uniform_policy_brands(facts.brand_ids, sla_seconds)
    count = max(workers, math.ceil(facts.posts / PARTITION_POSTS))
    with tempfile.TemporaryDirectory(prefix="replyclock-backtest-") as scratch:
        partitions = _partition(path, kind, facts, Path(scratch), count)
        facts.roots.clear()
        jobs = [(partition, brands, frozenset(facts.deleted)) for partition in partitions]
        if workers == 1:
            parts = [_fold_partition(job) for job in jobs]
        else:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                parts = list(pool.map(_fold_partition, jobs))
    buckets: Buckets = defaultdict(BucketTotals)
    for part in parts:
        for key, totals in part.items():
            buckets[key].merge(totals)
    return BacktestOutcome(facts, summarize_brands(buckets, brands, window), dict(buckets))


def summarize_brands(buckets: Buckets, brands: list[Brand], window: metrics.TimeWindow) -> BacktestResult:
    """Each brand's summary of the buckets that lie in the window, as GET /metrics/summary answers it."""
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
            overall, by_band = metrics.recovery(by_brand.get(brand.id, []))
            result.recoveries[brand.id] = RecoveryResponse(
                brand=brand.id,
                channel=None,
                priority=None,
                window=window.to_model(),
                by_response_band=by_band,
                **overall.model_dump(),
            )
        except (ValueError, ArithmeticError) as error:
            result.failures[brand.id] = str(error)
    return result


def _twcs_rows(path: Path) -> Iterator[twcs.TwcsRow | twcs.RejectedRow]:
    with path.open(newline="", encoding="utf-8-sig") as handle:
        try:
            yield from twcs.read_rows(handle)
        except (ValueError, csv.Error) as error:
            raise NotAnExport(str(error)) from None


def _jsonl_values(path: Path) -> Iterator[dict[str, object] | None]:
    """Each line as a JSON object (None for a line that is not one); blank lines skipped."""
    with path.open(encoding="utf-8-sig", newline="\n") as handle:
        for line in handle:
            if not line.strip():
                continue
            try:
                value = json.loads(line)
            except (ValueError, RecursionError):
                yield None
                continue
            yield value if isinstance(value, dict) else None


@dataclass(frozen=True)
class ExportContents:
    posts: list[Post]
    brand_ids: frozenset[str]


def export_contents(path: Path, kind: str) -> ExportContents:
    """Every accepted post of the export under its conversation root, deleted ones left out, and the brands that posted.

    In memory, for evaluations that walk an export's posts themselves (the backtest above streams them instead).
    """
    facts = _first_pass(path, kind)
    posts = [post for post in _rooted_posts(path, kind, facts) if post.id not in facts.deleted]
    return ExportContents(posts, frozenset(facts.brand_ids))


def _first_pass(path: Path, kind: str) -> ExportFacts:
    facts = ExportFacts()
    parents: dict[str, str | None] = {}
    explicit: dict[str, str] = {}
    if kind == "twcs":
        for row in _twcs_rows(path):
            if isinstance(row, twcs.RejectedRow):
                facts.reject(f"line {row.line}", f"{row.field}: {row.reason}")
                continue
            parents[row.tweet_id] = row.in_response_to_tweet_id
            facts.saw(row.created_at)
            if not row.inbound:
                facts.brand_ids.add(row.author_id)
    else:
        for value in _jsonl_values(path):
            post = _jsonl_post(value, "root-unknown")
            if isinstance(value, dict) and "delete" in value:
                target = value["delete"]
                if isinstance(target, dict) and isinstance(target.get("id"), str):
                    facts.deleted.add(target["id"])
                continue
            if post is None or value is None:
                facts.reject("a line", "not a post (not a JSON object, or a field fails validation)")
                continue
            parents[post.id] = post.in_reply_to
            if value.get("conversation_id"):
                explicit[post.id] = post.conversation_id
            facts.saw(post.created_at)
            if post.brand_id:
                facts.brand_ids.add(post.brand_id)
    facts.roots = twcs.roots_from_parents(parents) | explicit
    return facts


def _jsonl_post(value: dict[str, object] | None, root: str) -> Post | None:
    if value is None or "delete" in value:
        return None
    try:
        return Post.model_validate({**value, "conversation_id": value.get("conversation_id") or root})
    except ValidationError:
        return None


def _partition(path: Path, kind: str, facts: ExportFacts, scratch: Path, count: int) -> list[Path]:
    """Every accepted post, rooted, written as JSON to one of `count` files by its conversation."""
    partitions = [scratch / f"partition-{n:04d}.jsonl" for n in range(count)]
    handles: list[IO[str]] = [partition.open("w", encoding="utf-8") for partition in partitions]
    try:
        for post in _rooted_posts(path, kind, facts):
            position = zlib.crc32(f"{post.channel}#{post.conversation_id}".encode()) % count
            handles[position].write(post.model_dump_json(exclude_defaults=True) + "\n")
    finally:
        for handle in handles:
            handle.close()
    return partitions


def _rooted_posts(path: Path, kind: str, facts: ExportFacts) -> Iterator[Post]:
    if kind == "twcs":
        for row in _twcs_rows(path):
            if isinstance(row, twcs.TwcsRow):
                try:
                    yield twcs.to_post(row, facts.roots[row.tweet_id])
                except ValidationError:
                    facts.rejected += 1
        return
    for value in _jsonl_values(path):
        if value is not None and isinstance(value.get("id"), str):
            post = _jsonl_post(value, facts.roots.get(str(value["id"]), str(value["id"])))
            if post is not None:
                yield post


def _fold_partition(job: tuple[Path, list[Brand], frozenset[str]]) -> Buckets:
    partition, brands, deleted = job
    with partition.open(encoding="utf-8") as handle:
        # Scored once each, as the post store scores a post when it first stores it (an export's own score is ignored).
        posts = [scored(Post.model_validate_json(line)) for line in handle]
    return conversation_buckets((post for post in posts if post.id not in deleted), directory_from(brands))
