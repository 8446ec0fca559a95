from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from devtools.localstack.lambda_runtime import FakeLambdaContext
from tests.support.pipeline import Pipeline

EVENTS = Path(__file__).resolve().parents[2] / "events"


def load_event(name: str) -> dict[str, Any]:
    """An event from events/, the same file `sam local invoke -e` takes."""
    return json.loads((EVENTS / name).read_text())  # type: ignore[no-any-return]


@pytest.fixture
def lambda_context() -> FakeLambdaContext:
    return FakeLambdaContext()


@pytest.fixture
def aws() -> Iterator[None]:
    from replyclock.dal import table

    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()
    with mock_aws():
        yield
    table.get_resource.cache_clear()
    table.get_client.cache_clear()
    table.get_table.cache_clear()


@pytest.fixture
def pipeline(aws: None) -> Pipeline:
    return Pipeline.create()
