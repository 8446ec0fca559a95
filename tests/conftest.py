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

from devtools.localstack import moto_patches  # noqa: E402

# Once, for the whole run (never uninstalled): moto refuses the expressions DynamoDB refuses, and
# answers DynamoDB calls at the speed the slow suites need (devtools/localstack/moto_patches.py says why).
moto_patches.install()

pytest_plugins = ["tests.support.fixtures", "tests.support.api", "tests.support.emulators"]
