"""The measuring path on real customer-care conversations (../shared/datasets, not in the repo)."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest

from replyclock.dal.sources import SourceStore
from replyclock.logic.aggregation import BucketTotals
from replyclock.models.domain import Brand, WaitKind
from replyclock.models.sources import Source, SourceKind
from replyclock.services.dispatching import poll_one
from replyclock.services.ingesting import PollContext
from tests.support.emulators import TableEmulator, on_emulator
from tests.support.pipeline import Pipeline
from tests.support.twcs_oracle import DATASET, exact_first_waits, nearest_rank, write_head

pytestmark = [
    pytest.mark.realdata,
    pytest.mark.skipif(not DATASET.exists(), reason=f"real twcs data not found at {DATASET} (../shared/datasets)"),
]


@pytest.mark.slow
def test_first_waits_of_every_brand_match_an_exact_computation(pipeline: Pipeline, tmp_path: Path) -> None:
    check_first_waits(pipeline, tmp_path)


@pytest.mark.slow
def test_first_waits_of_every_brand_match_an_exact_computation_on_dynamodb_local(
    tmp_path: Path, dynamodb_local: str
) -> None:
    # The same, with the table on AWS's DynamoDB Local (its stream read through dynamodbstreams), on the
    # file's first DYNAMODB_LOCAL_ROWS rows (a parent cut off stands as the root, in the oracle too), so
    # that the run stays within make test's time
    head = write_head(DYNAMODB_LOCAL_ROWS, tmp_path / "head" / DATASET.name)
    with on_emulator(TableEmulator("dynamodb-local", dynamodb_local)):
        check_first_waits(Pipeline.create(), tmp_path, head, DYNAMODB_LOCAL_ROWS)


DYNAMODB_LOCAL_ROWS = 2000


def check_first_waits(pipeline: Pipeline, tmp_path: Path, dataset: Path = DATASET, rows: int = 5000) -> None:
    # Given the file as a replay source (every post goes through the post writer), brands being its
    # non-inbound authors
    export = shutil.copy(dataset, tmp_path / dataset.name)
    with dataset.open(newline="", encoding="utf-8") as handle:
        brand_ids = sorted({row["author_id"] for row in csv.DictReader(handle) if row["inbound"] == "False"})
    pipeline.add_brands(Brand(id=brand_id, name=brand_id) for brand_id in brand_ids)
    SourceStore(pipeline.table_name).put(Source(id="twcs", kind=SourceKind.REPLAY, replay_uri=str(export)))
    outcome = poll_one("twcs", PollContext(table_name=pipeline.table_name, remaining_ms=lambda: 900_000, owner="test"))
    assert (outcome.received, outcome.ingested, outcome.rejected) == (rows, rows, 0)

    # When measure and aggregate consume the stream
    pipeline.run()

    # Then each brand's first waits (mentions), answered ones and p50/p90 match the exact computation
    exact = exact_first_waits(dataset)
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
