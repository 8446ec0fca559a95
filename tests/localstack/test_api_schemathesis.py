"""The local API keeps the promises of its own OpenAPI document, whatever it is sent.

schemathesis fuzzes every operation of the document the API serves at /openapi.json, over HTTP
against the running local stack, with requests that fit the schema and requests that break it. Every
answer must be a non-5xx with a status code the operation documents, the content type it documents,
and a body that matches the documented schema. A configured brand with measured conversations is
seeded first, and half of the generated requests are steered to it, so reads go through real data
and not only through 404s.

schemathesis needs the document when it collects the tests, before the stack runs (its fixture loader,
schemathesis.pytest.from_fixture, fails under pytest 9.2), so it is read from the api function
in-process; a fixture checks that the local API serves that same document.

Run it alone: `.venv/bin/pytest tests/localstack/test_api_schemathesis.py`.
"""

from __future__ import annotations

import json
import urllib.request
from collections import defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import strategies as st
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.stack import LocalStack, StackOptions, configure
from replyclock.models.sources import Source, SourceKind
from tests.support.api import API_APP
from tests.support.builders import export_line
from tests.support.fixtures import load_event

pytestmark = pytest.mark.slow

NOW = datetime.now(UTC).replace(microsecond=0)
T0 = NOW - timedelta(days=1)
# Fixed, so a failure seen in CI is the one a developer reproduces.
SEED = 20261125
EXAMPLES_PER_OPERATION = 50
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]

ACME = {"name": "Acme", "handles": {"x": ["acmehelp"]}}
# What generated requests are steered to: the seeded brand, one of its conversations, and that one's answer
# (which DELETE removes once, reopening the wait; the conversation keeps its mention).
SEEDED = {
    "brand": "acme",
    "brand_id": "acme",
    "channel": "x",
    "conversation_id": "101",
    "post_id": "102",
    "source_id": "export",
}
# A source body that passes validation (a replay needs no credentials), offered beside the generated ones.
VALID_SOURCE = {"kind": "replay", "replay_uri": "s3://exports/acme.jsonl", "poll_every_seconds": 3600}


EXPORT = [
    export_line("101", "dana", T0, "@acmehelp my bill doubled"),
    export_line("102", "acmehelp", T0 + timedelta(minutes=10), "sorry, fixed", reply_to="101"),
    export_line("201", "kim", T0 + timedelta(hours=2), "@acmehelp my bill doubled"),  # never answered
]


def put_json(url: str, body: dict[str, Any]) -> int:
    request = urllib.request.Request(
        url, method="PUT", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("schemathesis")
    export = folder / "export.jsonl"
    export.write_text("".join(json.dumps(line) + "\n" for line in EXPORT))
    with LocalStack(StackOptions(api_port=0, log_dir=folder / "logs")) as local:
        assert put_json(f"{local.api_url}/brands/acme", ACME) == 201
        configure(local, sources=[Source(id="export", kind=SourceKind.REPLAY, replay_uri=str(export))])
        [outcome] = local.ingest("export")
        assert outcome["ingested"] == len(EXPORT)
        local.wait_until_drained(timeout=120)
        yield local


def steered(values: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """The generated values as they are, or with the seeded brand and conversation put in."""
    if not isinstance(values, dict):
        return st.just(values)
    seeded = {**values, **{name: SEEDED[name] for name in values if name in SEEDED}}
    return st.sampled_from([values, seeded])


def served_document() -> dict[str, Any]:
    """GET /openapi.json from the api function, as API Gateway would call it."""
    handler = load_handler(API_APP)
    response = handler(load_event("api_openapi.json"), FakeLambdaContext(function_name="ApiFunction"))
    assert response["statusCode"] == 200, response
    document: dict[str, Any] = json.loads(response["body"])
    return document


DOCUMENT = served_document()
schema = schemathesis.openapi.from_dict(
    DOCUMENT,
    config=schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"max-examples": EXAMPLES_PER_OPERATION, "deterministic": True, "database": "none"},
        }
    ),
)


@schema.hook("flatmap_query")
def steer_query(context: schemathesis.HookContext, query: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return steered(query)


@schema.hook("flatmap_path_parameters")
def steer_path(context: schemathesis.HookContext, parameters: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    return steered(parameters)


@schema.hook("flatmap_headers")
def steer_headers(context: schemathesis.HookContext, headers: dict[str, Any]) -> st.SearchStrategy[dict[str, Any]]:
    """A change needs If-Match with the current ETag: offer `*` (any version) beside the generated headers."""
    operation = context.operation
    if operation is None or operation.method.upper() != "PUT" or not operation.path.startswith("/brands/"):
        return st.just(headers)
    given = {name: value for name, value in (headers or {}).items() if name not in ("if-match", "if-none-match")}
    return st.sampled_from([headers, {**given, "if-match": "*"}])


@schema.hook("flatmap_body")
def steer_body(context: schemathesis.HookContext, body: Any) -> st.SearchStrategy[Any]:
    """PUT /sources/{id}: the generated body, or one that validates (the others mostly fail on kind)."""
    operation = context.operation
    if operation is not None and operation.path == "/sources/{source_id}" and isinstance(body, dict):
        return st.sampled_from([body, VALID_SOURCE])
    return st.just(body)


@pytest.fixture(scope="module")
def local_api(stack: LocalStack) -> str:
    """The local API's URL, once it is known to serve the document the tests were generated from."""
    with urllib.request.urlopen(f"{stack.api_url}/openapi.json", timeout=30) as response:
        assert json.loads(response.read()) == DOCUMENT
    return stack.api_url


# Status codes answered per operation, for the test after the fuzzing.
ANSWERED: dict[str, set[int]] = defaultdict(set)


@schema.parametrize()
def test_every_operation_answers_as_its_schema_documents(case: schemathesis.Case, local_api: str) -> None:
    response = case.call_and_validate(base_url=local_api, checks=CHECKS)
    ANSWERED[case.operation.label].add(response.status_code)


def test_the_fuzzing_reached_the_success_answer_of_every_operation() -> None:
    if not ANSWERED:
        pytest.skip("no operation was fuzzed in this session")
    never_succeeded = {label for label, statuses in ANSWERED.items() if not any(200 <= s < 300 for s in statuses)}
    assert not never_succeeded, {label: sorted(ANSWERED[label]) for label in never_succeeded}
