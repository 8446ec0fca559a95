"""Where posts come from: one configured source per (network account, brand) or export file.

Pure pydantic, no AWS. A source is data in the table, so adding a network account is one
write (PUT /sources/{id}), not a deployment: one scheduled tick polls every enabled source
whose `poll_every_seconds` has passed (replyclock.services.dispatching).
"""

from __future__ import annotations

import re
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, StringConstraints, field_validator, model_validator

from replyclock.models.domain import BrandId

SourceId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]


class SourceKind(StrEnum):
    X = "x"
    MASTODON = "mastodon"
    BLUESKY = "bluesky"
    REDDIT = "reddit"
    REPLAY = "replay"


# Where each network's API lives unless the source says otherwise (tests point base_url at a local server).
DEFAULT_BASE_URLS = {
    SourceKind.X: "https://api.x.com",
    SourceKind.BLUESKY: "https://bsky.social",
    SourceKind.REDDIT: "https://oauth.reddit.com",
}
DEFAULT_AUTH_URLS = {SourceKind.REDDIT: "https://www.reddit.com"}
# The keys each network's connector reads from the source's credentials (their names are not secret).
REQUIRED_CREDENTIALS: dict[SourceKind, tuple[str, ...]] = {
    SourceKind.X: ("bearer_token",),
    SourceKind.MASTODON: ("access_token",),
    SourceKind.BLUESKY: ("identifier", "app_password"),
    SourceKind.REDDIT: ("client_id", "client_secret", "username", "password"),
}
DEFAULT_POLL_EVERY_SECONDS = 300
MIN_POLL_EVERY_SECONDS = 60
# What the account id means on each network, checked so a typo fails at configuration time.
_ACCOUNT_ID_PATTERNS = {
    SourceKind.X: r"^\d{1,20}$",
    SourceKind.MASTODON: r"^\d{1,20}$",
    SourceKind.BLUESKY: r"^did:[a-z]+:[A-Za-z0-9._:%-]+$",
}


class Source(BaseModel):
    """One polled source: a brand's account on a network, or an export file to replay."""

    model_config = ConfigDict(frozen=True)

    id: SourceId
    kind: SourceKind
    # The brand whose account this is. Replays carry their brands in the file (twcs: non-inbound authors).
    brand_id: BrandId | None = None
    # X user id, Mastodon account id, Bluesky DID; Reddit needs only the handle (the username).
    account_id: str | None = None
    # The brand's handle on the network, lower-case, without "@" (Mastodon: the acct seen from its own server).
    account_handle: str | None = None
    base_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # Reddit issues tokens on another host than its API.
    auth_url: str | None = Field(default=None, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")
    # How often the ingest tick polls this source (the tick runs every minute, so a minute is the least).
    poll_every_seconds: int = Field(default=DEFAULT_POLL_EVERY_SECONDS, ge=MIN_POLL_EVERY_SECONDS, le=86_400)
    # Secrets Manager secret name, or an SSM parameter path (starts with "/"); a JSON object of strings.
    credentials_name: str | None = Field(default=None, min_length=1, max_length=512)
    enabled: bool = True
    # How far back the very first poll of a network source reaches.
    initial_lookback_hours: int = Field(default=24, ge=1, le=24 * 30)
    # Replay: "s3://bucket/key" or a local path (local stack); twcs CSV or JSONL of posts.
    replay_uri: str | None = None
    replay_format: Literal["twcs", "jsonl"] | None = None

    @field_validator("account_handle")
    @classmethod
    def _normalise_handle(cls, value: str | None) -> str | None:
        return value.strip().lstrip("@").lower() if value else value

    @model_validator(mode="after")
    def _complete_for_its_kind(self) -> Source:
        if self.kind is SourceKind.REPLAY:
            if not self.replay_uri:
                raise ValueError("a replay source needs replay_uri")
            if self.replay_format is None and not self.replay_uri.endswith((".csv", ".jsonl", ".ndjson")):
                raise ValueError("replay_format is needed when replay_uri does not end in .csv or .jsonl")
            return self
        missing = [name for name in ("brand_id", "account_handle", "credentials_name") if not getattr(self, name)]
        if self.kind is SourceKind.MASTODON and not self.base_url:
            missing.append("base_url (the Mastodon server)")
        pattern = _ACCOUNT_ID_PATTERNS.get(self.kind)
        if pattern and not self.account_id:
            missing.append("account_id")
        if missing:
            raise ValueError(f"a {self.kind.value} source needs {', '.join(missing)}")
        if pattern and not re.match(pattern, self.account_id or ""):
            raise ValueError(f"account_id {self.account_id!r} is not a {self.kind.value} account id")
        return self

    @property
    def api_url(self) -> str:
        return (self.base_url or DEFAULT_BASE_URLS.get(self.kind, "")).rstrip("/")

    @property
    def token_url(self) -> str:
        return (self.auth_url or DEFAULT_AUTH_URLS.get(self.kind) or self.api_url).rstrip("/")

    @property
    def export_format(self) -> Literal["twcs", "jsonl"]:
        if self.replay_format:
            return self.replay_format
        return "twcs" if (self.replay_uri or "").endswith(".csv") else "jsonl"


class Credentials(BaseModel):
    """A source's credentials: named secret strings that print as '**********'."""

    model_config = ConfigDict(frozen=True)

    values: dict[str, SecretStr] = Field(default_factory=dict)

    def secret(self, name: str) -> str:
        value = self.values.get(name)
        if value is None:
            raise KeyError(f"credentials lack {name!r} (they have: {', '.join(sorted(self.values)) or 'nothing'})")
        return value.get_secret_value()
