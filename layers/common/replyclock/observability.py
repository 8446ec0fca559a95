"""The one place that builds Powertools' logger, tracer and metrics."""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics, Tracer

from replyclock.redaction import install_redaction

logger = Logger()
# Every function's log output passes the credential redaction filter, not only ingest's.
install_redaction(logger)
tracer = Tracer()
metrics = Metrics()
