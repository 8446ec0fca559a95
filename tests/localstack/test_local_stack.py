"""The whole local stack starts, serves a replayed export through its HTTP API, sweeps, and stops cleanly."""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from devtools.localstack.stack import LocalStack, StackOptions, configure
from replyclock.models.domain import Brand, SLAPolicy, SLATargets
from replyclock.models.sources import Source, SourceKind
from tests.support.builders import export_line

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=2)


EXPORT = [
    export_line("101", "dana", T0, "@acmehelp my bill doubled"),
    export_line("102", "acmehelp", T0 + timedelta(seconds=600), "@dana sorry, fixed", reply_to="101"),
    export_line("201", "lee", T0 + timedelta(hours=1), "@acmehelp how do I change my name?"),
    export_line("202", "acmehelp", T0 + timedelta(hours=1, seconds=1800), "@lee Settings > Account", reply_to="201"),
    # Never answered, and long overdue: the first sweep breaches it.
    export_line("301", "kim", T0 + timedelta(hours=2), "@acmehelp anyone there?"),
]
ACME = Brand(
    id="acme",
    name="Acme",
    handles={"x": ["acmehelp"]},
    sla_policies=[SLAPolicy(targets=SLATargets(urgent=900, high=900, normal=900, low=900))],
)


@pytest.fixture(scope="module")
def alerts() -> list[tuple[str, dict[str, Any]]]:
    return []


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, alerts: list[tuple[str, dict[str, Any]]]) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("local-stack")
    export = folder / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in EXPORT))
    options = StackOptions(
        api_port=0, speed=600.0, log_dir=folder / "logs", on_alert=lambda subject, body: alerts.append((subject, body))
    )
    with LocalStack(options) as local:
        configure(local, [ACME], [Source(id="export", kind=SourceKind.REPLAY, replay_uri=str(export))])
        yield local


def get(url: str) -> tuple[int, Any]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def summary_url(stack: LocalStack) -> str:
    window = f"from={T0 - timedelta(hours=1):%Y-%m-%dT%H:00:00Z}&to={NOW + timedelta(hours=1):%Y-%m-%dT%H:00:00Z}"
    return f"{stack.api_url}/metrics/summary?brand=acme&{window}"


def test_everything_listens_on_the_loopback_interface(stack: LocalStack) -> None:
    assert stack.api_url.startswith("http://127.0.0.1:")
    assert stack.endpoint_url.startswith("http://127.0.0.1:")
    assert os.environ["AWS_ENDPOINT_URL"] == stack.endpoint_url


def test_a_replayed_export_is_measured_and_served_through_the_http_api(stack: LocalStack) -> None:
    # Given the export polled through the ingest function
    [outcome] = stack.ingest("export")
    assert (outcome["status"], outcome["ingested"]) == ("completed", 5)

    # When the stream pollers have fed measure and aggregate
    stack.wait_until_drained(timeout=120)

    # Then GET /metrics/summary, over HTTP, answers with the export's first responses
    status, body = get(summary_url(stack))
    assert status == 200, body
    assert (body["mentions"], body["responded"]) == (3, 2)
    assert body["first_response_seconds"]["p50"] == pytest.approx(600, rel=0.01)
    assert body["first_response_seconds"]["p90"] == pytest.approx(1800, rel=0.01)


def test_the_sweep_schedule_breaches_the_overdue_wait_alerts_and_updates_the_metrics(
    stack: LocalStack, alerts: list[tuple[str, dict[str, Any]]]
) -> None:
    # Given the template's schedules running 600 times faster (the sweep every second)
    stack.start_schedules()

    # When the sweeper has run
    deadline = time.monotonic() + 60
    while not alerts and time.monotonic() < deadline:
        time.sleep(0.2)

    # Then the unanswered mention was published as breached, and the breach reached the aggregates
    assert alerts, "no alert within 60 s"
    subject, body = alerts[0]
    assert subject.startswith("SLA breached: acme on x")
    assert body["conversation_id"] == "301"
    while time.monotonic() < deadline and get(summary_url(stack))[1]["sla"]["breached"] < 2:
        time.sleep(0.5)
    assert get(summary_url(stack))[1]["sla"]["breached"] == 2  # 1800 s > 900 s, and the unanswered one


def test_a_route_the_template_does_not_declare_gets_the_gateway_s_404(stack: LocalStack) -> None:
    request = urllib.request.Request(f"{stack.api_url}/brands/acme", method="POST", data=b"{}")
    with pytest.raises(urllib.error.HTTPError) as raised:
        urllib.request.urlopen(request, timeout=30)
    assert raised.value.code == 404
    assert json.loads(raised.value.read()) == {"message": "Not Found"}
