"""Each function runs in its own container process, with its template environment, as Lambda runs it."""

from __future__ import annotations

import os
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from devtools.localstack.cloudformation import PhysicalResource, Stack
from devtools.localstack.functions import (
    FunctionError,
    FunctionSpec,
    FunctionWorker,
    container_environment,
    function_specs,
)
from devtools.localstack.resources import PLACEHOLDERS


def named_stack(**overrides: str) -> Stack:
    """The real template with every resource given a local name (nothing is created)."""
    stack = Stack("replyclock-local", overrides)
    for logical_id, resource in stack.resources.items():
        if resource["Type"] in PLACEHOLDERS:
            stack.physical[logical_id] = PLACEHOLDERS[resource["Type"]](stack, logical_id)
        else:
            name = stack.physical_name(logical_id)
            stack.physical[logical_id] = PhysicalResource(
                ref=name,
                attributes={"Arn": f"arn:{name}", "StreamArn": f"stream:{name}", "QueueName": name, "TopicName": name},
            )
    return stack


def test_each_function_gets_the_globals_and_its_own_variables_resolved() -> None:
    stack = named_stack(MaxWindowDays="2300")
    specs = function_specs(stack)

    assert {spec.environment["TABLE_NAME"] for spec in specs.values()} == {"replyclock-local-Table"}
    assert specs["ApiFunction"].environment["MAX_WINDOW_DAYS"] == "2300"
    assert specs["SweepFunction"].environment["ALERTS_TOPIC_ARN"] == "replyclock-local-AlertsTopic"
    assert "ALERTS_TOPIC_ARN" not in specs["ApiFunction"].environment
    assert "MAX_WINDOW_DAYS" not in specs["SweepFunction"].environment
    assert specs["IngestFunction"].timeout_seconds == 120
    assert specs["MeasureFunction"].handler_path.name == "app.py"
    assert [layer.name for layer in specs["MeasureFunction"].layer_dirs] == ["common"]


def test_a_container_sees_its_own_variables_and_none_of_the_others() -> None:
    specs = function_specs(named_stack())
    inherited = {"PATH": "/bin", "AWS_PROFILE": "prod", "ALERTS_TOPIC_ARN": "stale", "POWERTOOLS_DEV": "1"}
    client = {"AWS_ENDPOINT_URL": "http://127.0.0.1:1", "AWS_ACCESS_KEY_ID": "testing"}

    environment = container_environment(
        specs["ApiFunction"], client, {name for spec in specs.values() for name in spec.environment}, inherited
    )

    assert environment["PATH"] == "/bin"
    assert environment["AWS_ENDPOINT_URL"] == "http://127.0.0.1:1"
    assert environment["AWS_LAMBDA_FUNCTION_NAME"] == "replyclock-local-ApiFunction"
    assert "AWS_PROFILE" not in environment and "ALERTS_TOPIC_ARN" not in environment
    assert "POWERTOOLS_DEV" not in environment
    assert str(specs["ApiFunction"].code_dir) in environment["PYTHONPATH"].split(os.pathsep)


FAKE_FUNCTION = textwrap.dedent(
    """
    import os
    import time

    def handler(event, context):
        action = event.get("action")
        if action == "raise":
            raise ValueError("bad input: " + event.get("why", ""))
        if action == "sleep":
            time.sleep(event["seconds"])
        if action == "unserializable":
            return {"when": object()}
        return {
            "echo": event,
            "variable": os.environ.get("GREETING"),
            "leaked": os.environ.get("ALERTS_TOPIC_ARN"),
            "function_name": context.function_name,
            "remaining_ms": context.get_remaining_time_in_millis(),
            "container": os.getpid(),
        }
    """
)


@pytest.fixture
def worker(tmp_path: Path) -> Iterator[FunctionWorker]:
    code = tmp_path / "code"
    code.mkdir()
    (code / "app.py").write_text(FAKE_FUNCTION)
    spec = FunctionSpec(
        logical_id="FakeFunction",
        name="local-FakeFunction",
        arn="arn:aws:lambda:us-east-1:123456789012:function:local-FakeFunction",
        handler="app.handler",
        code_dir=code,
        layer_dirs=(),
        timeout_seconds=2.0,
        memory_mb=128,
        environment={"GREETING": "hello"},
    )
    worker = FunctionWorker(spec, container_environment(spec, {}, {"GREETING", "ALERTS_TOPIC_ARN"}), tmp_path)
    worker.start()
    yield worker
    worker.stop()


def test_an_invocation_returns_the_handler_s_json_result(worker: FunctionWorker) -> None:
    result = worker.invoke({"n": 1})
    assert result["echo"] == {"n": 1}
    assert (result["variable"], result["leaked"], result["function_name"]) == ("hello", None, "local-FakeFunction")
    assert 0 < result["remaining_ms"] <= 2000
    assert worker.log_path.read_text().count("REPORT RequestId") == 1


def test_an_exception_is_reported_as_lambda_s_error_payload(worker: FunctionWorker) -> None:
    with pytest.raises(FunctionError) as raised:
        worker.invoke({"action": "raise", "why": "no brand"})
    assert raised.value.payload["errorType"] == "ValueError"
    assert raised.value.payload["errorMessage"] == "bad input: no brand"
    assert worker.invoke({"n": 2})["echo"] == {"n": 2}


def test_a_result_that_is_not_json_is_the_function_s_error(worker: FunctionWorker) -> None:
    with pytest.raises(FunctionError, match="TypeError"):
        worker.invoke({"action": "unserializable"})


def test_an_invocation_past_the_timeout_is_killed_and_the_next_one_gets_a_new_container(
    worker: FunctionWorker,
) -> None:
    # Given a warm container
    first = worker.invoke({})["container"]

    # When an invocation outlives the function's 2-second timeout
    with pytest.raises(FunctionError) as raised:
        worker.invoke({"action": "sleep", "seconds": 30})

    # Then it fails as a timeout, and the next invocation runs in a fresh container
    assert raised.value.payload["errorType"] == "Sandbox.Timedout"
    assert worker.invoke({})["container"] != first


def test_a_stopped_worker_refuses_invocations(worker: FunctionWorker) -> None:
    worker.invoke({})
    worker.stop()
    with pytest.raises(FunctionError, match="Stopped"):
        worker.invoke({})
