"""Every function of template.yaml, invoked with each of its events/ files, as `sam local invoke -e` would.

events/<prefix>_*.json belongs to the function whose logical id is <Prefix>Function. Each
function is loaded through the handler path the template names, with the environment the
template gives it, against moto holding the template's own tables, queues, topics and
bucket; the response must have the shape its trigger expects. One event of each function also
goes through `replyclock invoke` (devtools/localstack/invoke.py, the Docker-free `sam local
invoke`): its own container process, against a running local stack's resources.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from boto3.dynamodb.types import TypeDeserializer

from devtools.localstack import invoke as local_invoke
from devtools.localstack.cloudformation import Stack
from devtools.localstack.functions import FunctionSpec, function_specs
from devtools.localstack.http_api import template_routes
from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.resources import deploy
from devtools.localstack.stack import LocalStack, StackOptions
from devtools.localstack.template import REPO_ROOT, load_template
from replyclock.dal.brands import BrandStore
from replyclock.dal.sources import SourceStore
from replyclock.dal.table import get_table
from replyclock.models.domain import Brand
from replyclock.models.sources import Source, SourceKind
from replyclock.settings import get_settings
from tests.support.ingesting import FIXTURES
from tests.support.pipeline import import_measure_module_cache_reset

EVENTS = REPO_ROOT / "events"
EVENT_FILES = sorted(EVENTS.glob("*.json"))


def event_prefix(logical_id: str) -> str:
    """MeasureFunction -> measure: the naming convention of events/."""
    return logical_id.removesuffix("Function").lower()


def template_functions() -> list[str]:
    return [
        name
        for name, resource in load_template()["Resources"].items()
        if resource.get("Type") == "AWS::Serverless::Function"
    ]


def function_for(event_file: Path) -> str | None:
    prefix = event_file.stem.split("_", 1)[0]
    return next((name for name in template_functions() if event_prefix(name) == prefix), None)


def test_every_event_file_belongs_to_a_function_and_every_function_has_one() -> None:
    # Given the events/ folder and the template's functions
    owners = {event_file.name: function_for(event_file) for event_file in EVENT_FILES}

    # Then no event file is orphaned, and no function lacks an event
    assert [name for name, owner in owners.items() if owner is None] == []
    assert sorted(set(template_functions()) - set(owners.values())) == []


@pytest.fixture
def stack(aws: None, tmp_path: Path) -> Iterator[Stack]:
    stack = Stack("replyclock-parity")
    deploy(stack)
    seed(stack, tmp_path)
    yield stack
    get_settings.cache_clear()
    import_measure_module_cache_reset()


def seed(stack: Stack, tmp_path: Path) -> None:
    table = stack.physical["Table"].ref
    # The data the events refer to: the brand of the API events, the replay source of the
    # ingest event, and the post whose insertion the measure event reports.
    BrandStore(table).put(Brand(id="acme", name="Acme Corp"))
    source_id = json.loads((EVENTS / "ingest_source.json").read_text())["source_id"]
    export = shutil.copy(FIXTURES / "replay" / "small_posts.jsonl", tmp_path / "export.jsonl")
    SourceStore(table).put(Source(id=source_id, kind=SourceKind.REPLAY, replay_uri=str(export)))
    # The source the api_source_* events name, and its credentials; disabled, so the ingest tick
    # polls only the replay (the PUT event enables it, in its own stack).
    boto3.client("secretsmanager").create_secret(Name="replyclock/acme-x", SecretString='{"bearer_token": "t"}')
    SourceStore(table).put(
        Source(
            id="acme-x",
            kind=SourceKind.X,
            brand_id="acme",
            account_id="1001",
            account_handle="acmehelp",
            credentials_name="replyclock/acme-x",
            enabled=False,
        )
    )
    deserializer = TypeDeserializer()
    for record in json.loads((EVENTS / "measure_post_inserts.json").read_text())["Records"]:
        image = record["dynamodb"]["NewImage"]
        get_table(table).put_item(Item={name: deserializer.deserialize(value) for name, value in image.items()})
    import_measure_module_cache_reset()


def use_environment_of(spec: FunctionSpec, specs: dict[str, FunctionSpec], monkeypatch: pytest.MonkeyPatch) -> None:
    """The function's template environment, and none of the other functions' variables."""
    for other in specs.values():
        for name in other.environment:
            monkeypatch.delenv(name, raising=False)
    for name, value in spec.environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()


def invoke(spec: FunctionSpec, event: dict[str, Any]) -> Any:
    handler = load_handler(spec.handler_path, spec.handler_name)
    context = FakeLambdaContext(
        function_name=spec.name,
        memory_limit_in_mb=spec.memory_mb,
        timeout_seconds=spec.timeout_seconds,
        invoked_function_arn=spec.arn,
    )
    return handler(event, context)


def trigger_of(stack: Stack, spec: FunctionSpec) -> str:
    kinds = {str(event.get("Type")) for event in spec.events.values()}
    if spec.logical_id in {route.function for route in template_routes(stack)} or "HttpApi" in kinds:
        return "http"
    if kinds & {"DynamoDB", "Kinesis", "SQS"}:
        return "stream"
    if kinds & {"Schedule", "ScheduleV2"}:
        return "schedule"
    if not kinds:
        return "manual"
    raise AssertionError(f"{spec.logical_id} has no trigger the parity test knows: {sorted(kinds)}")


def check_http_response(response: Any) -> None:
    assert isinstance(response, dict)
    assert isinstance(response["statusCode"], int) and 200 <= response["statusCode"] < 500, response
    headers = response.get("headers", {})
    assert isinstance(headers, dict) and all(isinstance(value, str) for value in headers.values())
    body = response.get("body", "")
    assert isinstance(body, str)
    content_type = {name.lower(): value for name, value in headers.items()}.get("content-type", "")
    if "json" in content_type:
        json.loads(body)
    else:
        assert content_type.startswith("text/"), content_type


@pytest.mark.parametrize("event_file", EVENT_FILES, ids=[path.name for path in EVENT_FILES])
def test_the_function_answers_its_event_in_the_shape_its_trigger_expects(
    event_file: Path, stack: Stack, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given the function the event belongs to, with the environment the template gives it
    specs = function_specs(stack)
    function = function_for(event_file)
    assert function is not None, f"{event_file.name} names no function of template.yaml"
    spec = specs[function]
    use_environment_of(spec, specs, monkeypatch)

    # When it is invoked through its template handler path with the event
    response = invoke(spec, json.loads(event_file.read_text()))

    # Then the response has its trigger's shape
    trigger = trigger_of(stack, spec)
    if trigger == "stream":
        assert isinstance(response, dict) and set(response) == {"batchItemFailures"}
        assert response["batchItemFailures"] == [], "a valid event's records must all succeed"
    elif trigger == "http":
        check_http_response(response)
    else:
        assert isinstance(response, dict)


@pytest.mark.slow
def test_replyclock_invoke_answers_one_event_of_each_function_as_sam_local_invoke_would(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running local stack holding the events' data, announced as `replyclock run` announces it
    monkeypatch.setenv("REPLYCLOCK_RUNNING_FILE", str(tmp_path / "running.json"))
    with LocalStack(StackOptions(api_port=0, log_dir=tmp_path / "logs")) as local:
        seed(local.stack, tmp_path)
        local_invoke.publish(local)
        try:
            specs = function_specs(local.stack)
            for function in sorted(specs):
                event_file = next(path for path in EVENT_FILES if function_for(path) == function)

                # When `replyclock invoke FUNCTION -e events/FILE` runs it (its own container, the template's
                # handler path, environment and layer, the running stack's resources)
                outcome = local_invoke.invoke(function, json.loads(event_file.read_text()))

                # Then it succeeds with its trigger's shape, and its logs are Lambda's
                assert not outcome.error, (event_file.name, outcome.response, outcome.logs[-2000:])
                assert "the running local stack" in outcome.where
                assert "REPORT RequestId:" in outcome.logs
                trigger = trigger_of(local.stack, specs[function])
                if trigger == "stream":
                    assert outcome.response == {"batchItemFailures": []}, event_file.name
                elif trigger == "http":
                    check_http_response(outcome.response)
                else:
                    assert isinstance(outcome.response, dict), event_file.name
        finally:
            local_invoke.withdraw()
