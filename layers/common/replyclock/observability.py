"""The one place that builds Powertools' logger, tracer and metrics."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, cast

from aws_lambda_powertools import Logger, Metrics, Tracer

from replyclock.redaction import install_redaction

# Powertools' own reading of POWERTOOLS_TRACE_DISABLED (strtobool's "true" spellings).
_TRUE = frozenset({"1", "y", "yes", "t", "true", "on"})

logger = Logger()
# Every function's log output passes the credential redaction filter, not only ingest's.
install_redaction(logger)
metrics = Metrics()


def tracing_disabled() -> bool:
    """True when POWERTOOLS_TRACE_DISABLED switches tracing off (tests, benchmarks, local runs)."""
    return os.environ.get("POWERTOOLS_TRACE_DISABLED", "false").strip().lower() in _TRUE


# Tracer() imports aws_xray_sdk.core even when tracing is off, and that import builds the X-Ray
# recorder and its two botocore clients (~110 ms). When tracing is switched off the tracer would
# only wrap the handler in dummy subsegments, so there is none. With tracing on (deployed, Tracing:
# Active) it is built here, at import, as before: it patches boto3 before any handler runs.
tracer: Tracer | None = None if tracing_disabled() else Tracer()


def capture_lambda_handler[Handler: Callable[..., Any]](handler: Handler) -> Handler:
    """Tracer.capture_lambda_handler when tracing is on; the handler unchanged when it is off."""
    if tracer is None:
        return handler
    return cast(Handler, tracer.capture_lambda_handler(handler))
