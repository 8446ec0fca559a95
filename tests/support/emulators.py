"""The table on moto or on AWS's DynamoDB Local, for the tests that prove exactly-once on both.

A test's twin `…_on_dynamodb_local` takes the `dynamodb_local` fixture and runs its body
inside `on_emulator(TableEmulator("dynamodb-local", endpoint))`:
mock_aws for everything (SQS, SNS, ...), and with "dynamodb-local" the DynamoDB and DynamoDB
Streams clients sent to the session's DynamoDB Local instead (botocore's service-specific
endpoints; mock_aws lets requests to 127.0.0.1 through). One DynamoDB Local serves the whole
session, started by the first test that asks for it and killed at the end of the session; each
run drops its tables. Where it cannot run (no Java 17, package not installed), those tests
skip and say why.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import boto3
import pytest
from moto import mock_aws

from devtools.localstack.dynamodb_local import DynamoDBLocal, unavailable
from replyclock.dal import table

_ENDPOINT_VARIABLES = ("AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_DYNAMODB_STREAMS")
# Why the DynamoDB Local tier was skipped, repeated at the end of the run.
_skipped: list[str] = []


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if _skipped:
        terminalreporter.write_line(_skipped[0], yellow=True)


@pytest.fixture(scope="session")
def dynamodb_local() -> Iterator[str]:
    """The endpoint of a DynamoDB Local for the whole session (in memory)."""
    reason = unavailable()
    if reason is not None:
        message = f"DynamoDB Local tier skipped: {reason}"
        _skipped[:] = [message]
        pytest.skip(message)
    # Under pytest-xdist each worker starts its own; a port found free can be taken before the JVM binds it,
    # and the JVM then exits at once: try another port.
    for attempt in range(3):
        server = DynamoDBLocal()
        try:
            endpoint = server.start()
            break
        except RuntimeError:
            if attempt == 2:
                raise
    try:
        yield endpoint
    finally:
        server.stop()


@dataclass(frozen=True)
class TableEmulator:
    name: str
    # DynamoDB Local's endpoint; None on moto.
    endpoint: str | None = None


def _forget_clients() -> None:
    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()


@contextmanager
def on_emulator(emulator: TableEmulator) -> Iterator[None]:
    """mock_aws, with the table on DynamoDB Local when the emulator is "dynamodb-local"."""
    endpoint = emulator.endpoint
    _forget_clients()
    saved = {name: os.environ.get(name) for name in _ENDPOINT_VARIABLES}
    try:
        with mock_aws():
            if endpoint is not None:
                os.environ.update(dict.fromkeys(_ENDPOINT_VARIABLES, endpoint))
                _drop_tables()
            try:
                yield
            finally:
                if endpoint is not None:
                    _drop_tables()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        _forget_clients()


def _drop_tables() -> None:
    client = boto3.client("dynamodb")
    for name in client.list_tables()["TableNames"]:
        client.delete_table(TableName=name)
