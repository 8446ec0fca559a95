"""`replyclock invoke FUNCTION -e EVENT`: Docker-free `sam local invoke`, against a running stack or a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from devtools.localstack import invoke
from devtools.localstack.stack import LocalStack, StackOptions, configure
from replyclock.models.domain import Brand

EVENTS = Path(__file__).resolve().parents[2] / "events"


def run_cli(*args: str, running_file: Path) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "REPLYCLOCK_RUNNING_FILE": str(running_file)}
    return subprocess.run(
        [sys.executable, "-m", "devtools.cli", "invoke", *args],
        capture_output=True,
        text=True,
        timeout=300,
        env=environment,
    )


@pytest.mark.slow
def test_without_a_running_stack_it_invokes_the_function_against_a_fresh_one(tmp_path: Path) -> None:
    # When the sweeper is invoked with its event and no local stack runs
    completed = run_cli(
        "SweepFunction", "-e", str(EVENTS / "sweep_schedule.json"), "--table", "moto", running_file=tmp_path / "none"
    )

    # Then its response is on stdout, its logs (Lambda's START/END/REPORT lines) on stderr
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert isinstance(json.loads(completed.stdout), dict)
    assert "a fresh in-memory stack" in completed.stderr
    assert "START RequestId:" in completed.stderr and "REPORT RequestId:" in completed.stderr


@pytest.mark.slow
def test_with_a_running_stack_it_invokes_the_function_against_that_stack_s_resources(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a running stack that knows the brand acme, announced as `replyclock run` announces it
    running_file = tmp_path / "running.json"
    monkeypatch.setenv("REPLYCLOCK_RUNNING_FILE", str(running_file))
    with LocalStack(StackOptions(api_port=0, log_dir=tmp_path / "logs")) as stack:
        configure(stack, [Brand(id="acme", name="Acme Corp")])
        invoke.publish(stack)
        try:
            # When the api function is invoked with the GET /brands/acme event
            completed = run_cli("ApiFunction", "-e", str(EVENTS / "api_brand_get.json"), running_file=running_file)
        finally:
            invoke.withdraw()

    # Then it answered from the running stack's table
    assert completed.returncode == 0, completed.stderr[-3000:]
    response = json.loads(completed.stdout)
    assert response["statusCode"] == 200, response
    assert json.loads(response["body"])["id"] == "acme"
    assert "the running local stack" in completed.stderr
    assert not running_file.exists()


def test_an_unknown_function_is_one_line_naming_the_template_s_functions(tmp_path: Path) -> None:
    completed = run_cli(
        "NoSuchFunction", "-e", str(EVENTS / "sweep_schedule.json"), "--table", "moto", running_file=tmp_path / "x"
    )
    assert completed.returncode == 1
    assert "NoSuchFunction is not a function of template.yaml" in completed.stderr
    assert "SweepFunction" in completed.stderr
