"""Fixtures the integration tests share: the measuring path's faults, re-drive and reconcile; the ingest function."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from devtools.localstack.lambda_runtime import Handler, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal import credentials
from replyclock.settings import get_settings
from tests.support.faults import Faults
from tests.support.ingesting import create_table
from tests.support.pipeline import Pipeline


@pytest.fixture
def inject(pipeline: Pipeline) -> Iterator[Faults]:
    """Faults injected into the AWS calls of the test (stopped at its end)."""
    faults = Faults()
    yield faults
    faults.stop()


@pytest.fixture
def redrive(pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """RedriveFunction's handler (re-drive and reconcile), with the pipeline's on-failure queues."""
    monkeypatch.setenv("MEASURE_FAILURE_QUEUE_URL", pipeline.queues["MeasureFailureQueue"])
    monkeypatch.setenv("AGGREGATE_FAILURE_QUEUE_URL", pipeline.queues["AggregateFailureQueue"])
    get_settings.cache_clear()
    yield load_handler(REPO_ROOT / "functions" / "redrive" / "app.py")
    get_settings.cache_clear()


@pytest.fixture
def table(aws: None) -> Iterator[str]:
    """A fresh table for the ingest tests, with the credentials cache cleared around it (a secret one test read never
    answers another's)."""
    credentials.clear_cache()
    yield create_table()
    credentials.clear_cache()


@pytest.fixture
def ingest_handler() -> Handler:
    return load_handler(REPO_ROOT / "functions" / "ingest" / "app.py")
