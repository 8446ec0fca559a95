"""Export replay through the ingest service: from S3, and the real twcs sample (../shared/datasets)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr

from replyclock.dal.replay_objects import ExportNotFound
from replyclock.dal.sources import SourceStore, cursor_key
from replyclock.dal.table import get_table
from replyclock.models.sources import Source, SourceKind
from replyclock.services.dispatching import poll_one
from replyclock.services.ingesting import PollContext, PollOutcome, PollStatus
from tests.support.ingesting import FIXTURES, create_table
from tests.support.twcs_oracle import DATASET, write_head

REPLAYED_ROWS = 1000
NEEDS_DATASET = pytest.mark.skipif(
    not DATASET.exists(), reason=f"real twcs data not found at {DATASET} (../shared/datasets)"
)


def run(table: str, source_id: str) -> PollOutcome:
    # Lambda's 15-minute maximum: the whole file fits in one poll.
    return poll_one(source_id, PollContext(table_name=table, remaining_ms=lambda: 900_000, owner="test"))


def stored_post_ids(table: str) -> list[str]:
    scan: dict[str, Any] = {"FilterExpression": Attr("item_type").eq("post"), "ProjectionExpression": "id"}
    ids: list[str] = []
    while True:
        page = get_table(table).scan(**scan)
        ids.extend(str(item["id"]) for item in page["Items"])
        if "LastEvaluatedKey" not in page:
            return ids
        scan["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def table(aws: None) -> str:
    return create_table()


@pytest.fixture
def export_bucket(aws: None) -> Iterator[str]:
    boto3.client("s3").create_bucket(Bucket="replyclock-exports")
    yield "replyclock-exports"


def test_an_export_in_s3_is_replayed(table: str, export_bucket: str) -> None:
    # Given a JSONL export uploaded to the replay bucket
    body = (FIXTURES / "replay" / "small_posts.jsonl").read_bytes()
    boto3.client("s3").put_object(Bucket=export_bucket, Key="exports/acme.jsonl", Body=body)
    uri = f"s3://{export_bucket}/exports/acme.jsonl"
    SourceStore(table).put(Source(id="acme-backfill", kind=SourceKind.REPLAY, replay_uri=uri))

    # When the replay source is polled
    outcome = run(table, "acme-backfill")

    # Then its posts are stored and the bad lines counted
    assert outcome.status is PollStatus.COMPLETED
    assert sorted(stored_post_ids(table)) == ["20", "21", "22"]
    assert outcome.rejected == 2


def test_a_missing_export_fails_the_poll_and_keeps_no_cursor(table: str, export_bucket: str) -> None:
    # Given a replay source naming an object that is not there
    uri = f"s3://{export_bucket}/exports/missing.csv"
    SourceStore(table).put(Source(id="acme-backfill", kind=SourceKind.REPLAY, replay_uri=uri))

    # When it is polled
    # Then the poll fails, saying which object
    with pytest.raises(ExportNotFound, match="missing.csv"):
        run(table, "acme-backfill")
    assert SourceStore(table).load_cursor("acme-backfill").version == 0


@pytest.mark.realdata
@pytest.mark.slow
@NEEDS_DATASET
def test_the_real_twcs_sample_replayed_twice_stores_each_post_once(table: str, tmp_path: Path) -> None:
    # Given the first 1,000 rows of the Kaggle twcs export as a replay source (all 5,000 are ingested, once, by
    # the real-data measuring test: test_real_twcs_data.py)
    export = write_head(REPLAYED_ROWS, tmp_path / "twcs_head1000.csv")
    sources = SourceStore(table)
    sources.put(Source(id="twcs", kind=SourceKind.REPLAY, replay_uri=str(export)))

    # When it is replayed, then replayed again from scratch (its cursor forgotten)
    first = run(table, "twcs")
    get_table(table).delete_item(Key=cursor_key("twcs"))
    second = run(table, "twcs")

    # Then each of the 1,000 posts is stored once: the second replay read them all and wrote none
    rows = REPLAYED_ROWS
    assert (first.status, first.received, first.ingested, first.rejected) == (PollStatus.COMPLETED, rows, rows, 0)
    assert (second.received, second.ingested) == (rows, 0)
    ids = stored_post_ids(table)
    assert len(ids) == len(set(ids)) == rows
