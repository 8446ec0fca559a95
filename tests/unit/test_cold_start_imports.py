"""What a handler's cold start imports (issue 12: every handler imports in at most 1.5x `import boto3`)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def imported_by_api_handler(**environment: str) -> dict[str, bool]:
    """Import functions/api/app.py in a fresh interpreter; report what it pulled in."""
    probe = (
        "import json, sys, app\n"
        "print(json.dumps({'xray': 'aws_xray_sdk.core' in sys.modules, 'holidays': 'holidays' in sys.modules,"
        " 'tracer': sys.modules['replyclock.observability'].tracer is not None}))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO_ROOT / "functions" / "api",
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "layers" / "common"), **environment},
        capture_output=True,
        text=True,
        check=True,
    )
    result: dict[str, bool] = json.loads(completed.stdout.splitlines()[-1])
    return result


def test_api_handler_imports_neither_xray_nor_holidays_with_tracing_off() -> None:
    # aws_xray_sdk.core builds a recorder and two botocore clients on import (~110 ms); holidays ~15 ms.
    assert imported_by_api_handler(POWERTOOLS_TRACE_DISABLED="true") == {
        "xray": False,
        "holidays": False,
        "tracer": False,
    }


def test_api_handler_builds_the_tracer_when_tracing_is_not_switched_off() -> None:
    # As deployed (Tracing: Active, no POWERTOOLS_TRACE_DISABLED): Powertools' Tracer is built at import.
    imported = imported_by_api_handler(POWERTOOLS_TRACE_DISABLED="false")
    assert imported["tracer"] is True
    assert imported["xray"] is True
