"""Cold start: import time of each handler against a bare `import boto3` (python -X importtime), and the layer size."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from devtools.localstack.template import REPO_ROOT, resources_of_type

_IMPORT_LINE = re.compile(r"import time:\s+(\d+)\s+\|\s+(\d+)\s+\|(\s*)(\S+)")


# The judged figure: every handler imports in at most this multiple of a bare `import boto3` (issue 12).
TARGET_RATIO = 1.5
BOTO3 = "import boto3"


def import_ms(statement: str, folder: Path) -> float:
    """Cumulative import time of one statement in a fresh interpreter (python -X importtime), in folder."""
    environment = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT / "layers" / "common"),
        "TABLE_NAME": "benchmark",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "PYTHONDONTWRITEBYTECODE": "1",
    }
    completed = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", statement],
        cwd=folder,
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
    return total_us / 1000


def handler_import_ms(handler_paths: dict[str, Path], repeats: int = 5) -> tuple[dict[str, float], float]:
    """Best of `repeats` fresh interpreters for each handler and for a bare `import boto3`.

    The rounds interleave them (boto3, then every handler, again and again), so a busy machine slows
    both sides of the ratio alike; the best of each is the least disturbed.
    """
    best = dict.fromkeys(handler_paths, float("inf"))
    best_boto3 = float("inf")
    for _ in range(repeats):
        for name, path in handler_paths.items():
            # boto3 in the same folder, just before each handler: as many samples as the handlers get.
            best_boto3 = min(best_boto3, import_ms(BOTO3, path.parent))
            best[name] = min(best[name], import_ms(f"import {path.stem}", path.parent))
    return best, best_boto3


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
    paths = {}
    for name, resource in sorted(resources_of_type("AWS::Serverless::Function").items()):
        module = resource["Properties"]["Handler"].rpartition(".")[0]
        paths[name] = REPO_ROOT / resource["Properties"]["CodeUri"] / f"{module}.py"
    handlers, boto3_ms = handler_import_ms(paths)
    size, source = layer_size_bytes()
    return {
        "handler_import_ms": handlers,
        "boto3_import_ms": boto3_ms,
        "handler_ratio_to_boto3": {name: milliseconds / boto3_ms for name, milliseconds in handlers.items()},
        "target_ratio": TARGET_RATIO,
        "layer_bytes": size,
        "layer_measured_from": source,
    }


def main(argv: list[str]) -> None:
    result = run()
    print(f"import boto3: {result['boto3_import_ms']:.0f} ms (best of the same rounds)")
    for name, milliseconds in result["handler_import_ms"].items():
        ratio = result["handler_ratio_to_boto3"][name]
        verdict = "met" if ratio <= TARGET_RATIO else f"missed by {ratio - TARGET_RATIO:.2f}x"
        print(f"{name}: import {milliseconds:.0f} ms, {ratio:.2f}x import boto3; target <= {TARGET_RATIO}x: {verdict}")
    print(f"layer: {result['layer_bytes'] / 1e6:.1f} MB ({result['layer_measured_from']})")
