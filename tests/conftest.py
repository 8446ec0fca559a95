from __future__ import annotations

import os

import pytest

# Before anything imports boto3: fake credentials, a region, and moto's in-process
# DynamoDB Streams (botocore >= 1.44.4 otherwise routes them to an account endpoint).
os.environ.update(
    {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SECURITY_TOKEN": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
        "POWERTOOLS_SERVICE_NAME": "replyclock",
        "POWERTOOLS_METRICS_NAMESPACE": "ReplyClock",
        "POWERTOOLS_TRACE_DISABLED": "true",
        "POWERTOOLS_DEV": "false",
        "TABLE_NAME": "replyclock-test",
        "ALERTS_TOPIC_ARN": "arn:aws:sns:us-east-1:123456789012:replyclock-alerts",
    }
)

from devtools.localstack import moto_patches  # noqa: E402

# Once, for the whole run (never uninstalled): moto refuses the expressions DynamoDB refuses, and
# answers DynamoDB calls at the speed the slow suites need (devtools/localstack/moto_patches.py says why).
moto_patches.install()

from replyclock import redaction  # noqa: E402

pytest_plugins = ["tests.support.fixtures", "tests.support.api", "tests.support.emulators"]


@pytest.fixture(autouse=True)
def secrets_registered_by_a_test_end_with_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # replyclock.redaction keeps every secret the process loads, for the life of the process (as a Lambda container
    # should). A test's credentials, or a token a fuzzed payload handed a connector, must not mask text in a later
    # test (which tests share a process depends on how pytest-xdist distributes them): restored after each test.
    monkeypatch.setattr(redaction, "_secrets", redaction._secrets)
    monkeypatch.setattr(redaction, "_matchers", redaction._matchers)
