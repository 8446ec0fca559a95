"""template.yaml declares the measuring path the way the code relies on it."""

from __future__ import annotations

from typing import Any

import pytest

from devtools.localstack.streams import passes_filters
from devtools.localstack.template import load_template
from tests.support.fixtures import load_event
from tests.support.pipeline import stream_mappings

STREAM_FUNCTIONS = ("MeasureFunction", "AggregateFunction")


def resource(name: str) -> dict[str, Any]:
    return load_template()["Resources"][name]  # type: ignore[no-any-return]


def test_table_streams_both_images_with_recovery_and_ttl() -> None:
    properties = resource("Table")["Properties"]
    assert properties["BillingMode"] == "PAY_PER_REQUEST"
    assert properties["StreamSpecification"] == {"StreamViewType": "NEW_AND_OLD_IMAGES"}
    assert properties["PointInTimeRecoverySpecification"] == {"PointInTimeRecoveryEnabled": True}
    assert properties["TimeToLiveSpecification"] == {"AttributeName": "expires_at", "Enabled": True}
    assert {index["IndexName"] for index in properties["GlobalSecondaryIndexes"]} == {
        "OpenWaitsByDue",
        "ConversationsByBrand",
    }


def test_functions_run_python_3_13_on_arm64() -> None:
    globals_ = load_template()["Globals"]["Function"]
    assert (globals_["Runtime"], globals_["Architectures"]) == ("python3.13", ["arm64"])


@pytest.mark.parametrize("function", STREAM_FUNCTIONS)
def test_stream_consumers_report_partial_failures_bisect_and_park(function: str) -> None:
    [event] = [e for e in resource(function)["Properties"]["Events"].values() if e["Type"] == "DynamoDB"]
    spec = event["Properties"]
    assert spec["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert spec["BisectBatchOnFunctionError"] is True
    assert spec["ParallelizationFactor"] == 1
    assert spec["DestinationConfig"]["OnFailure"]["Type"] == "SQS"
    [mapping] = [m for m in stream_mappings() if m.function == function]
    assert 0 <= mapping.maximum_retry_attempts <= 10


def test_measure_sees_post_inserts_and_aggregate_sees_state_changes() -> None:
    measure, aggregate = (next(m for m in stream_mappings() if m.function == f) for f in STREAM_FUNCTIONS)
    post_records = load_event("measure_post_inserts.json")["Records"]
    state_records = load_event("aggregate_state_changes.json")["Records"]

    assert all(passes_filters(record, measure.filter_patterns) for record in post_records)
    assert not any(passes_filters(record, measure.filter_patterns) for record in state_records)
    assert all(passes_filters(record, aggregate.filter_patterns) for record in state_records)
    assert not any(passes_filters(record, aggregate.filter_patterns) for record in post_records)


def test_handlers_named_by_the_template_exist() -> None:
    for mapping in stream_mappings():
        assert mapping.handler_path.is_file(), mapping.handler_path
