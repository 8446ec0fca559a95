"""The measuring path on real customer-care conversations (../shared/datasets, not in the repo)."""

from __future__ import annotations

import csv
import math
import re
import shutil
from collections import defaultdict
from datetime import datetime
from pathlib import Path

import pytest

from replyclock.dal.sources import SourceStore
from replyclock.logic.aggregation import BucketTotals
from replyclock.models.domain import Brand, WaitKind
from replyclock.models.sources import Source, SourceKind
from replyclock.services.ingesting import ingest
from tests.support.pipeline import Pipeline

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "twcs_head5000.csv"

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not DATASET.exists(), reason=f"real twcs data not found at {DATASET} (../shared/datasets)"),
]


def exact_first_waits(path: Path) -> dict[str, list[float | None]]:
    """Per brand, the latency of every first wait (None while unanswered), computed from the CSV alone."""
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    parent = {row["tweet_id"]: (row["in_response_to_tweet_id"] or None) for row in rows}

    def root(tweet_id: str) -> str:
        seen = set()
        while parent.get(tweet_id) is not None and tweet_id not in seen:
            seen.add(tweet_id)
            up = parent[tweet_id]
            assert up is not None
            if up not in parent:
                return up
            tweet_id = up
        return tweet_id

    threads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        threads[root(row["tweet_id"])].append(row)
    brands = {row["author_id"] for row in rows if row["inbound"] == "False"}
    latencies: dict[str, list[float | None]] = defaultdict(list)
    for thread in threads.values():
        thread.sort(key=lambda row: (_time(row), int(row["tweet_id"])))
        for brand in brands:
            mention = re.compile(rf"(?<![\w@])@{re.escape(brand)}\b", re.IGNORECASE)
            brand_tweets = {row["tweet_id"] for row in thread if row["author_id"] == brand}
            spoke = False
            started: datetime | None = None
            for row in thread:
                if row["author_id"] == brand:
                    if started is not None:
                        break
                    spoke = True
                elif row["inbound"] == "True" and started is None:
                    if spoke or row["in_response_to_tweet_id"] in brand_tweets or mention.search(row["text"]):
                        started = _time(row)
            else:
                if started is not None:
                    latencies[brand].append(None)
                continue
            if started is not None:
                latencies[brand].append((_time(row) - started).total_seconds())
    return latencies


def _time(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y")


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]


@pytest.mark.slow
def test_first_waits_of_every_brand_match_an_exact_computation(pipeline: Pipeline, tmp_path: Path) -> None:
    # Given the file as a replay source (every post goes through the post writer), brands being its
    # non-inbound authors
    export = shutil.copy(DATASET, tmp_path / DATASET.name)
    with DATASET.open(newline="", encoding="utf-8") as handle:
        brand_ids = sorted({row["author_id"] for row in csv.DictReader(handle) if row["inbound"] == "False"})
    pipeline.add_brands(Brand(id=brand_id, name=brand_id) for brand_id in brand_ids)
    SourceStore(pipeline.table_name).put(Source(id="twcs", kind=SourceKind.REPLAY, replay_uri=str(export)))
    outcome = ingest("twcs", table_name=pipeline.table_name, remaining_ms=lambda: 900_000, owner="test")
    assert (outcome.received, outcome.ingested, outcome.rejected) == (5000, 5000, 0)

    # When measure and aggregate consume the stream
    pipeline.run()

    # Then each brand's first waits (mentions), answered ones and p50/p90 match the exact computation
    exact = exact_first_waits(DATASET)
    assert set(exact) <= set(brand_ids)
    for brand_id in brand_ids:
        first = BucketTotals()
        for key, totals in pipeline.buckets.query(brand_id, "0000", "9999"):
            if key.kind is WaitKind.FIRST:
                first.merge(totals)
        expected = exact.get(brand_id, [])
        answered = [latency for latency in expected if latency is not None]
        assert first.counters["waits"] == len(expected), brand_id
        assert first.counters["responded"] == len(answered), brand_id
        for q in (0.5, 0.9):
            measured = first.calendar.quantile(q)
            if not answered:
                assert measured is None
                continue
            assert measured == pytest.approx(nearest_rank(answered, q), rel=0.01, abs=0.5), (brand_id, q)
