"""Cold start: import time of each handler (python -X importtime) and the built layer's size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.template import REPO_ROOT, resources_of_type

_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


def handler_import_ms(handler_path: Path, repeats: int = 3) -> float:
    """Cumulative import time of the handler module, best of a few fresh interpreters."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "layers" / "common"),
        "TABLE_NAME": "benchmark",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    best = float("inf")
    for _ in range(repeats):
        completed = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", "import app"],
            cwd=handler_path.parent,
            env=environment,
            capture_output=True,
            text=True,
            check=True,
        )
        total_us = 0
        for line in completed.stderr.splitlines():
            match = _IMPORT_LINE.match(line)
            # Top-level imports have no indentation; their cumulative times add up to the whole import.
            if match and match.group(3) == " ":
                total_us += int(match.group(2))
        best = min(best, total_us / 1000)
    return best


def layer_size_bytes() -> tuple[int, str]:
    """Size of the layer as `make build` builds it (target-platform wheels), built into a temporary folder."""
    built = REPO_ROOT / ".aws-sam" / "build" / "CommonLayer"
    if built.is_dir():
        return _size(built), str(built.relative_to(REPO_ROOT))
    with tempfile.TemporaryDirectory() as artifacts:
        subprocess.run(
            [
                "make",
                "--no-print-directory",
                "-C",
                str(REPO_ROOT / "layers" / "common"),
                "build-CommonLayer",
                f"ARTIFACTS_DIR={artifacts}",
            ],
            check=True,
            capture_output=True,
        )
        return _size(Path(artifacts)), "layers/common (make build-CommonLayer into a temporary folder)"


def _size(folder: Path) -> int:
    return sum(path.stat().st_size for path in folder.rglob("*") if path.is_file())


def run() -> dict[str, Any]:
    handlers = {}
    for name, resource in sorted(resources_of_type("AWS::Serverless::Function").items()):
        module = resource["Properties"]["Handler"].rpartition(".")[0]
        path = REPO_ROOT / resource["Properties"]["CodeUri"] / f"{module}.py"
        handlers[name] = handler_import_ms(path)
    size, source = layer_size_bytes()
    return {"handler_import_ms": handlers, "layer_bytes": size, "layer_measured_from": source}


def main(argv: list[str]) -> None:
    result = run()
    for name, milliseconds in result["handler_import_ms"].items():
        print(f"{name}: import {milliseconds:.0f} ms")
    print(f"layer: {result['layer_bytes'] / 1e6:.1f} MB ({result['layer_measured_from']})")
