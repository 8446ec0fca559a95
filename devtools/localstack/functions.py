"""The template's functions, each run like a Lambda container: its own process, its own environment.

A FunctionWorker is one warm container of one function (reserved concurrency 1): a
Python process (devtools.localstack.container) that imports the function's handler through the
path the template names (devtools.localstack.lambda_runtime.load_handler), with exactly the
environment the template gives that function (Globals + its own Variables, intrinsics
resolved) plus the variables the Lambda runtime sets. Events and results cross the
process boundary as JSON, as they cross Lambda's. An invocation that outlives the
function's Timeout is killed and the container replaced, as Lambda does. The function's
stdout/stderr (Powertools logs, EMF metrics) go to a log file per function.

Separate processes keep what Lambda keeps apart: module globals (Powertools' batch
processor and metrics, the measure function's brand cache, cached settings) and
environment variables, and they let measure, aggregate and ingest run in parallel.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

from devtools.localstack.cloudformation import REGION

if TYPE_CHECKING:
    from devtools.localstack.cloudformation import Stack

# Not imported from devtools.localstack.template: a container process should not pay for importing cfn-lint.
REPO_ROOT = Path(__file__).resolve().parents[2]

# A new container may take this long to import its handler (cold start) before its first event.
INIT_TIMEOUT_SECONDS = 120.0
# What the Lambda runtime sets in every function's environment (values filled in per function).
_RUNTIME_VARIABLES = (
    "AWS_LAMBDA_FUNCTION_NAME",
    "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
    "AWS_LAMBDA_FUNCTION_VERSION",
    "AWS_LAMBDA_FUNCTION_TIMEOUT",
    "AWS_LAMBDA_LOG_GROUP_NAME",
    "AWS_LAMBDA_LOG_STREAM_NAME",
    "AWS_EXECUTION_ENV",
    "LAMBDA_TASK_ROOT",
    "_HANDLER",
)


class FunctionError(Exception):
    """The function failed (raised, timed out or crashed): what Lambda reports as a function error."""

    def __init__(self, function: str, payload: dict[str, Any]) -> None:
        super().__init__(f"{function}: {payload.get('errorType')}: {payload.get('errorMessage')}")
        self.function = function
        self.payload = payload


@dataclass(frozen=True)
class FunctionSpec:
    """One AWS::Serverless::Function of the template, resolved."""

    logical_id: str
    name: str
    arn: str
    handler: str
    code_dir: Path
    layer_dirs: tuple[Path, ...]
    timeout_seconds: float
    memory_mb: int
    environment: dict[str, str]
    events: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def handler_path(self) -> Path:
        module, _, _ = self.handler.rpartition(".")
        return self.code_dir / f"{module.replace('.', '/')}.py"

    @property
    def handler_name(self) -> str:
        return self.handler.rpartition(".")[2]

    def runtime_environment(self) -> dict[str, str]:
        """What the Lambda runtime adds (the local stack has no X-Ray daemon, so tracing is off)."""
        return {
            "AWS_LAMBDA_FUNCTION_NAME": self.name,
            "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(self.memory_mb),
            "AWS_LAMBDA_FUNCTION_VERSION": "$LATEST",
            "AWS_LAMBDA_FUNCTION_TIMEOUT": str(int(self.timeout_seconds)),
            "AWS_LAMBDA_LOG_GROUP_NAME": f"/aws/lambda/{self.name}",
            "AWS_LAMBDA_LOG_STREAM_NAME": "local",
            "AWS_EXECUTION_ENV": "AWS_Lambda_python3.13",
            "LAMBDA_TASK_ROOT": str(self.code_dir),
            "_HANDLER": self.handler,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "TZ": ":UTC",
            "POWERTOOLS_TRACE_DISABLED": "true",
            "AWS_XRAY_SDK_ENABLED": "false",
        }


def function_specs(stack: Stack) -> dict[str, FunctionSpec]:
    """Every function of the template with its Globals applied and its properties resolved."""
    globals_ = stack.resolve(stack.template.get("Globals", {}).get("Function", {}))
    specs: dict[str, FunctionSpec] = {}
    for logical_id in stack.resources_of_type("AWS::Serverless::Function"):
        if not stack.is_created(logical_id):
            continue
        own = stack.resources[logical_id].get("Properties", {})
        properties = {**globals_, **stack.resolve({key: value for key, value in own.items() if key != "Events"})}
        variables = {
            **globals_.get("Environment", {}).get("Variables", {}),
            **stack.resolve(own.get("Environment", {})).get("Variables", {}),
        }
        layer_dirs = []
        for layer_arn in properties.get("Layers", []):
            layer = _layer_by_arn(stack, str(layer_arn))
            if layer is not None:
                layer_dirs.append(REPO_ROOT / str(stack.resources[layer]["Properties"]["ContentUri"]))
        physical = stack.physical[logical_id]
        specs[logical_id] = FunctionSpec(
            logical_id=logical_id,
            name=physical.ref,
            arn=physical.attributes["Arn"],
            handler=str(properties["Handler"]),
            code_dir=REPO_ROOT / str(properties["CodeUri"]),
            layer_dirs=tuple(layer_dirs),
            timeout_seconds=float(properties.get("Timeout", 3)),
            memory_mb=int(properties.get("MemorySize", 128)),
            environment={name: _as_text(value) for name, value in variables.items()},
            # Events stay unresolved here: the scheduler and the stream mappings resolve what they read.
            events=dict(own.get("Events", {})),
        )
    return specs


def _layer_by_arn(stack: Stack, arn: str) -> str | None:
    for logical_id, physical in stack.physical.items():
        if physical.ref == arn and stack.resources[logical_id].get("Type", "").endswith("LayerVersion"):
            return logical_id
    return None


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# --- the container process -----------------------------------------------------------------


class FunctionWorker:
    """One warm container of a function; invoke() runs one event at a time, like reserved concurrency 1.

    The container is `python -m devtools.localstack.container` in its own session (Ctrl-C in the
    terminal does not reach it), with exactly the function's environment, stdout and stderr to the
    function's log file, talking to this process over a socket pair.
    """

    def __init__(self, spec: FunctionSpec, environment: dict[str, str], log_dir: Path) -> None:
        self.spec = spec
        self.environment = environment
        self.log_path = log_dir / f"{spec.logical_id}.log"
        self._lock = threading.Lock()
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Connection | None = None
        self._ready = False
        self._stopped = False
        self.invocations = 0
        self.errors = 0

    def start(self) -> None:
        """Start the container; its cold start runs in the background until the first event."""
        ours, theirs = socket.socketpair()
        with self.log_path.open("ab") as log:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "devtools.localstack.container", str(theirs.fileno())],
                env=self.environment,
                cwd=self.spec.code_dir,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                pass_fds=(theirs.fileno(),),
                start_new_session=True,
            )
        theirs.close()
        self._connection = Connection(ours.detach())
        self._connection.send(
            {
                "name": self.spec.name,
                "arn": self.spec.arn,
                "handler_path": str(self.spec.handler_path),
                "handler_name": self.spec.handler_name,
                "memory_mb": self.spec.memory_mb,
                "timeout_seconds": self.spec.timeout_seconds,
                "sys_path": [str(self.spec.code_dir), *(str(layer) for layer in self.spec.layer_dirs)],
            }
        )
        self._ready = False

    def invoke(self, event: Any) -> Any:
        """The function's result; raises FunctionError when it raised, timed out or crashed."""
        event_json = json.dumps(event)
        with self._lock:
            if self._stopped:
                raise self._error("Stopped", "the local stack is stopping")
            if self._process is None or self._process.poll() is not None:
                self._discard()
                self.start()
            connection = self._connection
            assert connection is not None
            self.invocations += 1
            try:
                if not self._ready:
                    self._exchange(connection, None, INIT_TIMEOUT_SECONDS, "Runtime.InitTimeout")
                    self._ready = True
                message = ("invoke", str(uuid.uuid4()), event_json)
                kind, body = self._exchange(connection, message, self.spec.timeout_seconds + 1.0, "Sandbox.Timedout")
            except FunctionError:
                self.errors += 1
                raise
            if kind == "error":
                self.errors += 1
                raise FunctionError(self.spec.logical_id, json.loads(body))
            return json.loads(body)

    def _exchange(
        self, connection: Connection, message: tuple[str, str, str] | None, timeout: float, timeout_type: str
    ) -> tuple[str, str]:
        """Send the message (if any) and wait for the container's answer."""
        try:
            if message is not None:
                connection.send(message)
            if connection.poll(timeout):
                kind, body = connection.recv()
                return str(kind), str(body)
        except (EOFError, OSError):
            # The container died, or stop() ended it while this invocation was waiting.
            self._discard()
            if self._stopped:
                raise self._error("Stopped", "the local stack stopped during the invocation") from None
            raise self._error("Runtime.ExitError", f"the container exited (see {self.log_path})") from None
        self._discard()
        raise self._error(timeout_type, f"Task timed out after {timeout:.2f} seconds")

    def _error(self, error_type: str, message: str) -> FunctionError:
        return FunctionError(self.spec.logical_id, {"errorType": error_type, "errorMessage": message})

    def _discard(self) -> None:
        """Kill the container; the next invocation starts a new one (a cold start)."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.kill()
            process.wait(5)
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def stop(self) -> None:
        self._stopped = True
        if self._lock.acquire(timeout=0.5):
            try:
                if self._connection is not None and self._process is not None and self._process.poll() is None:
                    self._connection.send(("stop", "", ""))
                    self._process.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
            finally:
                self._lock.release()
        # Still inside an invocation (or deaf): end it, as Lambda ends a container when its function goes.
        self._discard()


class Functions:
    """A container per function of the template."""

    def __init__(self, specs: dict[str, FunctionSpec], client_environment: dict[str, str], log_dir: Path) -> None:
        self.specs = specs
        # No function sees another's template variables, even when this process has them set.
        others = {name for spec in specs.values() for name in spec.environment}
        self.workers = {
            logical_id: FunctionWorker(spec, container_environment(spec, client_environment, others), log_dir)
            for logical_id, spec in specs.items()
        }

    def start(self, logical_ids: Collection[str]) -> None:
        """Start these functions' containers now; the others start at their first invocation (a cold start)."""
        for logical_id in logical_ids:
            self.workers[logical_id].start()

    def invoke(self, logical_id: str, event: Any) -> Any:
        return self.workers[logical_id].invoke(event)

    def stop(self) -> None:
        threads = [threading.Thread(target=worker.stop) for worker in self.workers.values()]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()


def container_environment(
    spec: FunctionSpec,
    client_environment: dict[str, str],
    template_variables: set[str],
    inherited: dict[str, str] | None = None,
) -> dict[str, str]:
    """The function's environment: this process's, minus every AWS/Powertools setting and template variable,
    plus the function's own; the layer and the function's code importable as on Lambda (/opt/python, /var/task).
    """
    inherited = dict(os.environ if inherited is None else inherited)
    dropped = set(_RUNTIME_VARIABLES) | template_variables | {"PYTHONPATH", "PYTHONSTARTUP", "PYTHONHOME"}
    base = {
        name: value
        for name, value in inherited.items()
        if name not in dropped and not name.startswith(("AWS_", "POWERTOOLS_", "_LAMBDA"))
    }
    python_path = [str(spec.code_dir), *(str(layer) for layer in spec.layer_dirs), str(REPO_ROOT)]
    return {
        **base,
        **client_environment,
        **spec.runtime_environment(),
        **spec.environment,
        "PYTHONPATH": os.pathsep.join(python_path),
        "PYTHONUNBUFFERED": "1",
    }
