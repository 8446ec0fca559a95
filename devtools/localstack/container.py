"""A Lambda container for one function: `python -m devtools.localstack.container FD`.

Started by devtools.localstack.functions.FunctionWorker with the function's environment,
it reads its configuration, then invocations, from the connection on file descriptor FD,
and answers each with the handler's JSON result or Lambda's error payload. Its stdout is
the function's log (Powertools JSON lines and EMF metrics), with START/END/REPORT lines
around each invocation as Lambda writes them.
"""

from __future__ import annotations

import json
import sys
import time
import traceback
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any


def error_payload(error: BaseException, error_type: str | None = None) -> dict[str, Any]:
    return {
        "errorType": error_type or type(error).__name__,
        "errorMessage": str(error),
        "stackTrace": traceback.format_exception(error),
    }


def serve(connection: Connection) -> None:
    config = connection.recv()
    for directory in reversed(config["sys_path"]):
        if directory not in sys.path:
            sys.path.insert(0, directory)
    from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler

    init_error: dict[str, Any] | None = None
    started = time.monotonic()
    try:
        handler = load_handler(Path(config["handler_path"]), config["handler_name"])
    except Exception as error:  # noqa: BLE001 - reported on every invocation, like Runtime.ImportModuleError
        init_error = error_payload(error, "Runtime.ImportModuleError")
        traceback.print_exc()
    print(f"INIT {config['name']} in {(time.monotonic() - started) * 1000:.0f} ms", flush=True)
    connection.send(("ready", ""))
    while True:
        try:
            kind, request_id, event_json = connection.recv()
        except (EOFError, OSError):
            return
        if kind == "stop":
            return
        if init_error is not None:
            connection.send(("error", json.dumps(init_error)))
            continue
        context = FakeLambdaContext(
            function_name=config["name"],
            memory_limit_in_mb=config["memory_mb"],
            timeout_seconds=config["timeout_seconds"],
            aws_request_id=request_id,
            invoked_function_arn=config["arn"],
            log_group_name=f"/aws/lambda/{config['name']}",
        )
        print(f"START RequestId: {request_id} Version: $LATEST", flush=True)
        started = time.monotonic()
        try:
            result = handler(json.loads(event_json), context)
            # Lambda returns JSON: a result that does not serialize is the function's error.
            reply = ("ok", json.dumps(result))
        except Exception as error:  # noqa: BLE001 - any exception is the function's error
            traceback.print_exc()
            reply = ("error", json.dumps(error_payload(error)))
        duration_ms = (time.monotonic() - started) * 1000
        print(f"END RequestId: {request_id}", flush=True)
        print(f"REPORT RequestId: {request_id}\tDuration: {duration_ms:.2f} ms", flush=True)
        connection.send(reply)


if __name__ == "__main__":
    serve(Connection(int(sys.argv[1])))
