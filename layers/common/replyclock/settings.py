"""Settings read from the environment once per process."""

from __future__ import annotations

import os
from functools import lru_cache

from pydantic import BaseModel, Field


class Settings(BaseModel):
    # No default: a missing infrastructure name is an error, not a guess.
    table_name: str = Field(min_length=3)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings(table_name=os.environ.get("TABLE_NAME", ""))
