"""`replyclock invoke FUNCTION -e EVENT`: one function run as `sam local invoke` runs it, without Docker.

The function runs in a container process of its own (devtools.localstack.functions.FunctionWorker):
the handler path, environment and layer that template.yaml gives it, plus what the Lambda runtime
sets. Its AWS resources are those of the local stack that `replyclock run` is running, when one is
(it announces itself in a file under the temporary directory while it runs); otherwise a fresh
in-memory stack of the template's resources, made for this invocation and gone after it. As
`sam local invoke` does, the function's response goes to stdout and its logs to stderr.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import urllib.error
import urllib.request
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from devtools.localstack.cloudformation import PhysicalResource, Stack
from devtools.localstack.emulator import Emulator, TableEmulator, environment
from devtools.localstack.functions import FunctionError, FunctionWorker, container_environment, function_specs
from devtools.localstack.resources import deploy

if TYPE_CHECKING:
    from devtools.localstack.stack import LocalStack

STACK_NAME = "replyclock-local"


def running_file() -> Path:
    return Path(os.environ.get("REPLYCLOCK_RUNNING_FILE") or Path(tempfile.gettempdir()) / "replyclock-local.json")


def publish(stack: LocalStack) -> None:
    """Tell later `replyclock invoke` calls where this stack's resources are (removed by withdraw)."""
    state = {
        "pid": os.getpid(),
        "client_environment": stack.emulator.client_environment(),
        "parameter_overrides": dict(stack.options.parameter_overrides),
        "physical": {
            logical_id: {"ref": physical.ref, "attributes": physical.attributes}
            for logical_id, physical in stack.stack.physical.items()
        },
    }
    path = running_file()
    temporary = path.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(state))
    os.replace(temporary, path)


def withdraw() -> None:
    path = running_file()
    try:
        if json.loads(path.read_text()).get("pid") == os.getpid():
            path.unlink()
    except (OSError, ValueError):
        pass


def running_stack() -> dict[str, Any] | None:
    """The announced running stack, if its process is alive and its emulator answers."""
    try:
        state = json.loads(running_file().read_text())
        os.kill(int(state["pid"]), 0)
        urllib.request.urlopen(state["client_environment"]["AWS_ENDPOINT_URL"] + "/moto-api/", timeout=2).close()
    except urllib.error.HTTPError:
        pass  # it answers
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return state  # type: ignore[no-any-return]


@dataclass
class Invocation:
    response: Any
    error: bool
    logs: str
    where: str


def invoke(function: str, event: Any, table: TableEmulator = "auto", log_dir: Path | None = None) -> Invocation:
    """Run FUNCTION (a logical id of the template) once with EVENT."""
    state = running_stack()
    with ExitStack() as cleanup:
        if log_dir is None:
            log_dir = Path(tempfile.mkdtemp(prefix="replyclock-invoke-"))
            cleanup.callback(shutil.rmtree, log_dir, True)
        if state is not None:
            stack = Stack(STACK_NAME, state["parameter_overrides"])
            stack.physical.update(
                {key: PhysicalResource(value["ref"], value["attributes"]) for key, value in state["physical"].items()}
            )
            client_environment: dict[str, str] = state["client_environment"]
            where = f"the running local stack (pid {state['pid']})"
        else:
            stack = Stack(STACK_NAME)
            emulator = Emulator(table=table, log_dir=log_dir)
            emulator.start()
            cleanup.callback(emulator.stop)
            client_environment = emulator.client_environment()
            with environment(client_environment):
                deploy(stack)
            where = f"a fresh in-memory stack (table on {emulator.table_backend})"
        specs = function_specs(stack)
        if function not in specs:
            raise LookupError(
                f"{function} is not a function of template.yaml; its functions: {', '.join(sorted(specs))}"
            )
        others = {name for spec in specs.values() for name in spec.environment}
        spec = specs[function]
        worker = FunctionWorker(spec, container_environment(spec, client_environment, others), log_dir)
        worker.start()
        cleanup.callback(worker.stop)
        try:
            response, error = worker.invoke(event), False
        except FunctionError as failure:
            response, error = failure.payload, True
        worker.stop()
        logs = worker.log_path.read_text(errors="replace") if worker.log_path.exists() else ""
    return Invocation(response, error, logs, where)


def command(
    function: str, event_path: str, table: TableEmulator, out: TextIO = sys.stdout, err: TextIO = sys.stderr
) -> int:
    try:
        event = json.loads(Path(event_path).read_text()) if event_path != "-" else json.load(sys.stdin)
    except OSError as error:
        raise SystemExit(f"cannot read {event_path}: {error.strerror or error}") from None
    except ValueError as error:
        raise SystemExit(f"{event_path} is not JSON: {error}") from None
    try:
        outcome = invoke(function, event, table)
    except LookupError as error:
        raise SystemExit(str(error)) from None
    err.write(f"Invoking {function} against {outcome.where}\n")
    err.write(outcome.logs)
    out.write(json.dumps(outcome.response) + "\n")
    out.flush()
    return 1 if outcome.error else 0
