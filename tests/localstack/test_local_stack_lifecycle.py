"""A local stack stops cleanly: no server, container, thread or environment variable is left behind."""

from __future__ import annotations

import os
import socket
import threading
import time
from pathlib import Path

import pytest

from devtools.localstack.stack import LocalStack, StackOptions

pytestmark = pytest.mark.slow


def port_is_open(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    with socket.socket() as probe:
        probe.settimeout(1)
        return probe.connect_ex((host, int(port))) == 0


def test_stopping_leaves_no_server_container_thread_or_variable_behind(tmp_path: Path) -> None:
    # Given a running stack with its containers started
    before = os.environ.get("AWS_ENDPOINT_URL")
    local = LocalStack(StackOptions(api_port=0, log_dir=tmp_path)).start()
    assert local.functions is not None
    local.invoke("SweepFunction", {})
    processes = [worker._process for worker in local.functions.workers.values()]
    api, emulator = local.api_url, local.endpoint_url

    # When it stops
    started = time.monotonic()
    local.stop()

    # Then, within seconds, nothing of it is left
    assert time.monotonic() - started < 30
    assert not port_is_open(api) and not port_is_open(emulator)
    assert all(process is None or process.poll() is not None for process in processes)
    assert os.environ.get("AWS_ENDPOINT_URL") == before
    names = {thread.name for thread in threading.enumerate()}
    assert not {name for name in names if name.startswith(("esm-", "schedule-", "http-api", "alerts-inbox"))}


def test_one_process_runs_one_local_stack_at_a_time(tmp_path: Path) -> None:
    # moto keeps its resources in process-wide state, which two emulators would share.
    with LocalStack(StackOptions(api_port=0, log_dir=tmp_path)):
        with pytest.raises(RuntimeError, match="already running"):
            LocalStack(StackOptions(api_port=0, log_dir=tmp_path)).start()
