"""Settings read from the environment once per process."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    # No default: a missing infrastructure name is an error, not a guess.
    table_name: str = Field(min_length=3)
    # Tunables have defaults, so a deployment that does not set them keeps working.
    max_window_days: int = Field(default=400, ge=1, le=3660)
    # Only the sweeper publishes alerts; it refuses to run without a topic.
    alerts_topic_arn: str | None = None
    # Only the re-drive function reads the stream consumers' on-failure queues.
    measure_failure_queue_url: str | None = None
    aggregate_failure_queue_url: str | None = None
    # Where source credentials may live (the template's CredentialsSecretPrefix / CredentialsParameterPath).
    credentials_secret_prefix: str = "replyclock/"
    credentials_parameter_path: str = "/replyclock/"
    # Per-brand authorisation of JWT callers (replyclock.api.access): the scope that reads and writes
    # everything, and the claim naming the brands any other caller may read.
    admin_scope: str = "replyclock/admin"
    brands_claim: str = "replyclock_brands"


# Settings that may be absent from the environment: field name -> environment variable.
_OPTIONAL_VARIABLES = {
    "max_window_days": "MAX_WINDOW_DAYS",
    "alerts_topic_arn": "ALERTS_TOPIC_ARN",
    "measure_failure_queue_url": "MEASURE_FAILURE_QUEUE_URL",
    "aggregate_failure_queue_url": "AGGREGATE_FAILURE_QUEUE_URL",
    "credentials_secret_prefix": "CREDENTIALS_SECRET_PREFIX",
    "credentials_parameter_path": "CREDENTIALS_PARAMETER_PATH",
    "admin_scope": "ADMIN_SCOPE",
    "brands_claim": "BRANDS_CLAIM",
}


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    optional = {
        name: os.environ[variable] for name, variable in _OPTIONAL_VARIABLES.items() if os.environ.get(variable)
    }
    return Settings.model_validate({"table_name": os.environ.get("TABLE_NAME", ""), **optional})
