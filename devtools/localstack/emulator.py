"""moto in server mode, in this process (and DynamoDB Local for the table), and the environment that points every
boto3 client at them."""

from __future__ import annotations

import logging
import os
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Literal

from devtools.localstack import dynamodb_local
from devtools.localstack.cloudformation import REGION

# Where the table runs: "local" is AWS's DynamoDB Local (devtools.localstack.dynamodb_local), "moto" is moto's
# DynamoDB, "auto" is DynamoDB Local where it can run (Java 17+, the package installed), else moto.
TableEmulator = Literal["auto", "local", "moto"]
# Under a data directory (`replyclock run --data DIR`), DynamoDB Local keeps the table here.
TABLE_FOLDER = "dynamodb"

# Fake credentials (as moto asks), a fixed region, no profile. AWS_ACCOUNT_ID_ENDPOINT_MODE
# keeps botocore from routing calls to account-based endpoints.
CLIENT_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
    "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
}
# Variables that would make a client reach a real account or read a real profile.
_REMOVED = (
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_DYNAMODB_STREAMS",
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_ROLE_ARN",
)


class Emulator:
    """moto's ThreadedMotoServer on 127.0.0.1 (a free port unless one is given), and the table's emulator.

    With DynamoDB Local, DynamoDB and DynamoDB Streams go to it (botocore's service-specific
    AWS_ENDPOINT_URL_DYNAMODB / AWS_ENDPOINT_URL_DYNAMODB_STREAMS); SNS, SQS, S3, KMS, logs,
    Secrets Manager and SSM stay on moto. `data_dir` keeps DynamoDB Local's data there (-dbPath).
    """

    def __init__(
        self,
        port: int = 0,
        table: TableEmulator = "moto",
        data_dir: Path | None = None,
        log_dir: Path | None = None,
        dynamodb: dynamodb_local.DynamoDBLocal | None = None,
    ) -> None:
        self._port = port
        self._server: object | None = None
        self.endpoint_url = ""
        self.table_mode = table
        self.data_dir = data_dir
        self.log_dir = log_dir
        # DynamoDB Local, when the caller launched it already (`replyclock run` does, before its imports).
        self.dynamodb = dynamodb
        # Why the table runs on moto although DynamoDB Local was asked for ("auto"), in one line.
        self.fallback_reason: str | None = None

    @property
    def table_endpoint_url(self) -> str:
        return self.dynamodb.endpoint_url if self.dynamodb is not None else self.endpoint_url

    @property
    def table_backend(self) -> str:
        return "DynamoDB Local" if self.dynamodb is not None else "moto"

    def start(self) -> str:
        if self.dynamodb is None and self.table_mode != "moto":
            self.dynamodb, self.fallback_reason = launch_dynamodb_local(self.table_mode, self.data_dir, self.log_dir)
        try:
            url = self._start_moto()
            if self.dynamodb is not None:
                self.dynamodb.wait()
        except BaseException:
            self.stop()
            raise
        return url

    def _start_moto(self) -> str:
        # They patch moto's classes, so they must be installed in the process that hosts the server.
        from devtools.localstack import moto_patches

        moto_patches.install()
        from moto.server import ThreadedMotoServer

        # werkzeug logs one line per request; the local stack makes hundreds per second.
        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=self._port, verbose=False)
        server.start()
        host, port = server.get_host_and_port()
        self._server = server
        self.endpoint_url = f"http://{host}:{port}"
        return self.endpoint_url

    def stop(self) -> None:
        if self.dynamodb is not None:
            self.dynamodb.stop()
            self.dynamodb = None
        if self._server is None:
            return
        # Forget every resource, so a later emulator (or mock_aws) in this process starts empty.
        request = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        try:
            urllib.request.urlopen(request, timeout=10).close()
        except OSError:
            pass
        self._server.stop()  # type: ignore[attr-defined]
        self._server = None

    def client_environment(self) -> dict[str, str]:
        variables = {**CLIENT_ENVIRONMENT, "AWS_ENDPOINT_URL": self.endpoint_url}
        if self.dynamodb is not None:
            variables["AWS_ENDPOINT_URL_DYNAMODB"] = self.dynamodb.endpoint_url
            variables["AWS_ENDPOINT_URL_DYNAMODB_STREAMS"] = self.dynamodb.endpoint_url
        return variables


def launch_dynamodb_local(
    table: TableEmulator, data_dir: Path | None, log_dir: Path | None
) -> tuple[dynamodb_local.DynamoDBLocal | None, str | None]:
    """DynamoDB Local, launched (its JVM starts meanwhile), or None and why not when "auto" falls back to moto."""
    reason = dynamodb_local.unavailable()
    if reason is not None:
        if table == "local":
            raise RuntimeError(reason)
        return None, reason
    server = dynamodb_local.DynamoDBLocal(data_dir)
    server.launch(log_dir / "DynamoDBLocal.log" if log_dir is not None else None)
    return server, None


@contextmanager
def environment(variables: Mapping[str, str], remove: tuple[str, ...] = _REMOVED) -> Iterator[None]:
    """os.environ with these variables set (and the profile ones removed), restored afterwards."""
    saved = {name: os.environ.get(name) for name in (*variables, *remove)}
    for name in remove:
        os.environ.pop(name, None)
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
