from __future__ import annotations

import os

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

from devtools import moto_limits, moto_speedups  # noqa: E402
from devtools.localstack import moto_json  # noqa: E402

moto_speedups.install()
# moto takes expressions DynamoDB refuses (over 4 KB, over 300 operators); these tests must not.
moto_limits.install()
# moto's generic response encoder dominates the slow suites; the local stack's DynamoDB fast path
# gives byte-identical JSON (tests/localstack/test_moto_json.py compares them).
moto_json.install()

pytest_plugins = ["tests.support.fixtures", "tests.support.api", "tests.support.emulators"]
