"""Every alarm and dashboard widget watches a metric the code really emits; queues and topics are encrypted."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import time_machine

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT, load_template, resources_of_type
from replyclock.models.domain import Brand, SLAPolicy, SLATargets
from replyclock.services.ingesting import PollOutcome, emit_metrics
from tests.support.builders import T0, brand, customer
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

Emitted = set[tuple[str, str, frozenset[str]]]
ACME = Brand(id="acme", name="Acme", sla_policies=[SLAPolicy(targets=SLATargets(normal=600))])


def emf_metrics(output: str) -> Emitted:
    """(namespace, metric, dimension names) of every EMF record printed."""
    emitted: Emitted = set()
    for line in output.splitlines():
        if not line.startswith("{") or '"_aws"' not in line:
            continue
        record = json.loads(line)
        for directive in record["_aws"]["CloudWatchMetrics"]:
            for dimensions in directive["Dimensions"]:
                for metric in directive["Metrics"]:
                    emitted.add((directive["Namespace"], metric["Name"], frozenset(dimensions)))
    return emitted


@pytest.fixture
def emitted(pipeline: Pipeline, capsys: pytest.CaptureFixture[str]) -> Emitted:
    """What measure, sweep and ingest print when waits are answered, go at risk, breach, and posts arrive."""
    pipeline.add_brands([ACME])
    capsys.readouterr()
    pipeline.write([customer("1", 0, conversation="met"), brand("2", 5, conversation="met")])
    pipeline.write([customer("3", 0, conversation="late"), brand("4", 30, conversation="late")])
    pipeline.write([customer("5", 0, conversation="next"), brand("6", 1, conversation="next")])
    pipeline.write([customer("7", 20, "again", conversation="next"), brand("8", 25, conversation="next")])
    pipeline.write([customer("9", 0, conversation="risk"), customer("10", 0, conversation="open")])
    # An unhappy customer answered, who then posts again (recovery's follow-up metrics).
    pipeline.write(
        [customer("12", 0, "@acme awful, just awful", conversation="recover"), brand("13", 3, conversation="recover")]
    )
    pipeline.write([customer("14", 4, "@acme thanks!", conversation="recover")])
    pipeline.run()
    sweep = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")
    with time_machine.travel(T0 + timedelta(minutes=8, seconds=30), tick=False):
        sweep(load_event("sweep_schedule.json"), FakeLambdaContext())
    pipeline.write([brand("11", 9, conversation="risk")])
    with time_machine.travel(T0 + timedelta(minutes=12), tick=False):
        sweep(load_event("sweep_schedule.json"), FakeLambdaContext())
    emit_metrics(PollOutcome(source_id="x-acme", ingested=3, newest_post_at=T0), now=T0 + timedelta(minutes=1))
    return emf_metrics(capsys.readouterr().out)


_INSIGHTS = re.compile(r"SELECT\s+\w+\((\w+)\)\s+FROM\s+SCHEMA\((\w+),\s*([\w,\s]+)\)", re.IGNORECASE)
_SEARCH = re.compile(r"\{(\w+),([\w,]+)\}\s+MetricName=\\?\"(\w+)\\?\"")


def watched_metrics() -> Iterator[tuple[str, str, str, frozenset[str], Any]]:
    """(resource, namespace, metric, dimension names, dimension values) named by alarms and the dashboard."""
    for name, alarm in resources_of_type("AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        if "MetricName" in properties:
            dimensions = properties.get("Dimensions", [])
            yield name, properties["Namespace"], properties["MetricName"], _names(dimensions), dimensions
        for query in properties.get("Metrics", []):
            if "MetricStat" in query:
                metric = query["MetricStat"]["Metric"]
                dimensions = metric.get("Dimensions", [])
                yield name, metric["Namespace"], metric["MetricName"], _names(dimensions), dimensions
            for match in _INSIGHTS.finditer(query.get("Expression", "")):
                dimension_names = frozenset(part.strip() for part in match.group(3).split(","))
                yield name, match.group(2), match.group(1), dimension_names, None
    body = load_template()["Resources"]["Dashboard"]["Properties"]["DashboardBody"]["Fn::Sub"][0]
    for widget in json.loads(re.sub(r"\$\{[^}]+\}", "x", body))["widgets"]:
        for row in widget["properties"]["metrics"]:
            values = [value for value in row if not isinstance(value, dict)]
            if values:
                namespace, metric, *pairs = values
                yield "Dashboard", namespace, metric, frozenset(pairs[0::2]), pairs
            for option in (value for value in row if isinstance(value, dict)):
                for match in _SEARCH.finditer(option.get("expression", "")):
                    yield "Dashboard", match.group(1), match.group(3), frozenset(match.group(2).split(",")), None


def _names(dimensions: list[dict[str, Any]]) -> frozenset[str]:
    return frozenset(dimension["Name"] for dimension in dimensions)


def test_every_replyclock_metric_watched_is_emitted_with_those_dimensions(emitted: Emitted) -> None:
    watched = [(where, ns, metric, dims) for where, ns, metric, dims, _ in watched_metrics() if ns == "ReplyClock"]

    assert watched, "no ReplyClock metric is watched at all"
    missing = [entry for entry in watched if (entry[1], entry[2], entry[3]) not in emitted]
    assert missing == [], f"watched but never emitted: {missing}\nemitted: {sorted(emitted)}"


def test_the_contract_metrics_are_emitted(emitted: Emitted) -> None:
    names = {metric for _, metric, _ in emitted}
    assert {
        "FirstResponseSeconds",
        "NextResponseSeconds",
        "SLAMet",
        "SLABreached",
        "SLAAtRisk",
        "OpenWaits",
        "OldestOpenWaitSeconds",
        "IngestedPosts",
        "IngestLagSeconds",
        "IngestThrottled",
        "IngestRejected",
    } <= names


def test_aws_metrics_watched_point_at_resources_of_this_template() -> None:
    resources = load_template()["Resources"]
    for where, namespace, metric, _, dimensions in watched_metrics():
        if namespace not in ("AWS/Lambda", "AWS/SQS") or where == "Dashboard":
            continue
        [dimension] = dimensions
        reference = dimension["Value"]
        target = reference.get("Ref") or reference.get("Fn::GetAtt", [None])[0]
        assert target in resources, (where, metric, reference)


def test_every_function_has_an_errors_alarm_and_every_stream_consumer_an_iterator_age_alarm() -> None:
    functions = set(resources_of_type("AWS::Serverless::Function"))
    watched = {
        (metric, dims[0]["Value"]["Ref"])
        for _, ns, metric, _, dims in watched_metrics()
        if ns == "AWS/Lambda" and dims and isinstance(dims[0], dict)
    }
    assert {("Errors", function) for function in functions} <= watched
    assert {("IteratorAge", "MeasureFunction"), ("IteratorAge", "AggregateFunction")} <= watched


def test_every_queue_has_a_messages_alarm() -> None:
    queues = set(resources_of_type("AWS::SQS::Queue"))
    watched = {
        dims[0]["Value"]["Fn::GetAtt"][0]
        for _, ns, metric, _, dims in watched_metrics()
        if ns == "AWS/SQS" and metric == "ApproximateNumberOfMessagesVisible" and dims and isinstance(dims[0], dict)
    }
    assert queues <= watched


def test_alarms_notify_the_alerts_topic() -> None:
    for name, alarm in resources_of_type("AWS::CloudWatch::Alarm").items():
        assert alarm["Properties"]["AlarmActions"] == [{"Ref": "AlertsTopic"}], name


def test_every_queue_and_topic_is_encrypted() -> None:
    for name, queue in resources_of_type("AWS::SQS::Queue").items():
        properties = queue["Properties"]
        assert properties.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in properties, name
    for name, topic in resources_of_type("AWS::SNS::Topic").items():
        assert "KmsMasterKeyId" in topic["Properties"], name
