"""The HTTP API's request and response bodies.

Separate from the domain models and mapped explicitly, so the public JSON contract
(served as OpenAPI at /openapi.json) changes only when this module does. Nested value
objects that already are plain configuration (calendar, priority rules, SLA targets)
are reused from the domain so their validation stays in one place.
"""

from __future__ import annotations

import unicodedata
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from replyclock.logic.patterns import MAX_PATTERN_LENGTH, pattern_error
from replyclock.logic.recovery import ResponseBand
from replyclock.models.domain import (
    AuthorRole,
    BrandId,
    BusinessCalendar,
    Channel,
    Clock,
    Priority,
    PriorityRule,
    SLATargets,
    WaitKind,
    WaitStatus,
)

Seconds = Annotated[float | None, Field(description="Seconds on the requested clock; null when nothing to measure.")]


class ApiModel(BaseModel):
    """Base of every body below. Schemas build on first use, not at import: a cold start serves one
    route, which needs a few of these models; building all of them at import cost ~10 ms more."""

    model_config = ConfigDict(defer_build=True)


class Interval(StrEnum):
    HOUR = "hour"
    DAY = "day"


class ErrorBody(ApiModel):
    """Every 4xx/5xx answer of the API."""

    message: str = Field(description="What was wrong, for a human.")
    field: str | None = Field(
        default=None, description="The parameter or body field at fault (dotted path), when there is one."
    )


class Window(ApiModel):
    """The time window actually summed: [from, to), in UTC, aligned to the buckets read."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from", description="Inclusive start (UTC).")
    to: datetime = Field(description="Exclusive end (UTC).")
    hours: int = Field(ge=0, description="Whole hours in the window.")


class LatencyStats(ApiModel):
    """Latency of answered waits; percentiles are nearest-rank and within 1% of the exact value."""

    count: int = Field(ge=0, description="Answered waits measured.")
    mean: Seconds
    p50: Seconds
    p90: Seconds
    p95: Seconds
    p99: Seconds
    max: Seconds


class SLAStats(ApiModel):
    met: int = Field(ge=0)
    breached: int = Field(ge=0)
    pending: int = Field(description="Waits neither met nor breached yet: waits - met - breached.")
    at_risk: int = Field(ge=0, description="Of the pending waits, those past their at-risk point.")
    compliance: float | None = Field(description="met / (met + breached); null when nothing is decided yet.")


class Figures(ApiModel):
    """The measured figures of a set of buckets (the body of a summary and of each time-series point)."""

    mentions: int = Field(ge=0, description="First waits that started in the window (conversations addressed).")
    responded: int = Field(ge=0, description="Of those, the ones the brand answered.")
    response_rate: float | None = Field(description="responded / mentions; null without mentions.")
    first_response_seconds: LatencyStats
    sla: SLAStats = Field(description="SLA outcome of first responses.")
    next_waits: int = Field(ge=0, description="Later waits (a customer spoke again after the brand) in the window.")
    next_responded: int = Field(ge=0)
    next_response_seconds: LatencyStats
    next_sla: SLAStats = Field(description="SLA outcome of next responses.")
    handed_off: int = Field(
        default=0, ge=0, description="First responses that moved the conversation to a private channel ('DM us')."
    )
    handoff_rate: float | None = Field(default=None, description="handed_off / responded; null without responses.")
    after_handoff: int = Field(
        default=0, ge=0, description="Next waits a customer opened in public after being handed off ('still waiting')."
    )


class MetricsScope(ApiModel):
    brand: BrandId
    channel: Channel | None
    priority: Priority | None
    clock: Clock
    window: Window


class OpenExposure(ApiModel):
    """The audience watching a brand's unanswered complaints now, as the sweeper last counted it (every minute)."""

    open_waits: int = Field(ge=0, description="Customers waiting for an answer now.")
    open_exposure: int = Field(
        ge=0, description="Sum over those waits of the opening post's author reach plus its reposts, where known."
    )
    as_of: datetime = Field(description="When the sweeper counted them.")


class SummaryResponse(Figures, MetricsScope):
    """GET /metrics/summary."""

    exposure: OpenExposure | None = Field(
        default=None,
        description="Open waits and their exposure now (not over the window), of the brand or of the channel asked "
        "for; null before the sweeper's first count, or when a priority is asked for (counted per channel only).",
    )


class TimeseriesPoint(Figures):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: datetime = Field(alias="from")
    to: datetime


class TimeseriesResponse(MetricsScope):
    """GET /metrics/timeseries: one point per interval of the window, empty intervals included."""

    interval: Interval
    points: list[TimeseriesPoint]


class DistributionBand(ApiModel):
    label: str = Field(examples=["15m", "1h", "4h", "24h", "over_24h"])
    above_seconds: float = Field(ge=0, description="Exclusive lower bound (0 for the first band, inclusive).")
    up_to_seconds: float | None = Field(description="Inclusive upper bound; null for the last band.")
    count: int = Field(ge=0)
    share: float | None = Field(description="count / responded; null when nothing was answered.")


class DistributionResponse(MetricsScope):
    """GET /metrics/distribution: first responses by how long they took."""

    responded: int = Field(ge=0)
    unanswered: int = Field(ge=0, description="First waits of the window still open.")
    bands: list[DistributionBand]


class WaitOut(ApiModel):
    kind: WaitKind
    status: WaitStatus
    priority: Priority
    start_post_id: str
    started_at: datetime
    end_post_id: str | None
    ended_at: datetime | None
    calendar_seconds: float | None
    business_seconds: float | None
    policy_version: int = Field(description="The SLA policy version this wait was measured against.")
    clock: Clock
    target_seconds: int
    due_at: datetime
    at_risk_at: datetime


class ConversationItem(ApiModel):
    """One customer's waits for the brand in one conversation."""

    channel: Channel
    conversation_id: str
    brand_id: BrandId
    customer: str = Field(description="The customer's handle on the channel.")
    status: WaitStatus | None = Field(description="The latest wait's status: open, else the last closed one's.")
    started_at: datetime | None = Field(description="Start of this customer's first wait in the conversation.")
    version: int
    waits: list[WaitOut] = Field(description="Oldest first: the first response, then next responses.")


class ConversationPage(ApiModel):
    """GET /conversations: newest first."""

    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    brand: BrandId
    from_: datetime = Field(alias="from")
    to: datetime
    items: list[ConversationItem]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null on the last page.")


class PostOut(ApiModel):
    id: str
    channel: Channel
    author: str
    author_role: AuthorRole
    brand_id: BrandId | None
    created_at: datetime
    text: str
    url: str | None
    in_reply_to: str | None
    mentions: list[str]


class BrandWaits(ApiModel):
    """One customer's waits for one brand in the conversation."""

    brand_id: BrandId
    customer: str = Field(description="The customer's handle on the channel.")
    status: WaitStatus | None
    version: int
    waits: list[WaitOut]


class ConversationDetail(ApiModel):
    """GET /conversations/{channel}/{id}."""

    channel: Channel
    conversation_id: str
    posts: list[PostOut] = Field(description="In conversation order (created_at, id).")
    posts_truncated: bool = Field(description="True when only the latest posts are listed.")
    brands: list[BrandWaits] = Field(description="Per brand and customer, sorted by brand then customer.")


# Caps on what a client may send: every stored item stays far below DynamoDB's 400 KB, and every
# request's work stays bounded (the 64 KiB body cap alone still let 6,000 handles through).
MAX_CHANNELS = 16
MAX_HANDLES_PER_CHANNEL = 20
MAX_PATTERNS = 50
MAX_PRIORITY_RULES = 20
MAX_RULE_TERMS = 100
MAX_TERM_LENGTH = 100
MAX_HOLIDAYS = 400
MAX_INTERVALS_PER_DAY = 24
# Unicode categories refused in names and identifiers: controls (Cc), invisible format characters
# such as the right-to-left override U+202E or zero-width spaces (Cf), surrogates, private use,
# line and paragraph separators. Spoofed or invisible text has no place in a brand's name or handle.
_REFUSED_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Zl", "Zp"}


def printable(value: str) -> str:
    for char in value:
        if unicodedata.category(char) in _REFUSED_CATEGORIES:
            raise ValueError(f"control or invisible formatting character U+{ord(char):04X} is not allowed")
    return value


def linear_time_pattern(value: str) -> str:
    error = pattern_error(value)
    if error is not None:
        raise ValueError(f"pattern {value!r} is {error}")
    return value


Name = Annotated[str, Field(min_length=1, max_length=200), AfterValidator(printable)]
Handle = Annotated[str, Field(min_length=1, max_length=100), AfterValidator(printable)]
AutoReplyPattern = Annotated[str, Field(max_length=MAX_PATTERN_LENGTH), AfterValidator(linear_time_pattern)]


class BrandInput(ApiModel):
    """PUT /brands/{id}: the brand's configuration; SLA policies are managed under /sla-policy."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    handles: dict[Channel, list[Handle]] = Field(
        default_factory=dict,
        max_length=MAX_CHANNELS,
        description=f"channel -> the brand's own handles there (case-insensitive, no '@'); at most {MAX_CHANNELS} "
        f"channels of {MAX_HANDLES_PER_CHANNEL} handles.",
    )
    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    auto_reply_patterns: list[AutoReplyPattern] = Field(
        default_factory=list,
        max_length=MAX_PATTERNS,
        description="Case-insensitive RE2 regexes (linear-time: no backreferences or lookaround).",
    )
    handoff_patterns: list[AutoReplyPattern] | None = Field(
        default=None,
        max_length=MAX_PATTERNS,
        description="Case-insensitive RE2 regexes: an answer matching one moves the conversation to a private channel "
        "('DM us'); it counts as answered, flagged handed_off. Omit for the defaults; [] for none.",
    )
    priority_rules: list[PriorityRule] | None = Field(
        default=None, max_length=MAX_PRIORITY_RULES, description="Omit for the default rules."
    )

    @model_validator(mode="after")
    def _within_caps(self) -> BrandInput:
        for channel, handles in self.handles.items():
            if len(handles) > MAX_HANDLES_PER_CHANNEL:
                raise ValueError(f"handles.{channel}: at most {MAX_HANDLES_PER_CHANNEL} handles per channel")
        for index, rule in enumerate(self.priority_rules or []):
            for name in ("keywords", "hashtags"):
                terms: list[str] = getattr(rule, name)
                if len(terms) > MAX_RULE_TERMS:
                    raise ValueError(f"priority_rules.{index}.{name}: at most {MAX_RULE_TERMS} terms")
                for term in terms:
                    if len(term) > MAX_TERM_LENGTH:
                        raise ValueError(f"priority_rules.{index}.{name}: terms are at most {MAX_TERM_LENGTH} long")
                    printable(term)
        if len(self.calendar.holidays) > MAX_HOLIDAYS:
            raise ValueError(f"calendar.holidays: at most {MAX_HOLIDAYS} dates")
        if any(len(intervals) > MAX_INTERVALS_PER_DAY for intervals in self.calendar.weekly_hours.values()):
            raise ValueError(f"calendar.weekly_hours: at most {MAX_INTERVALS_PER_DAY} intervals a day")
        return self


def _targets_rise_with_lower_priority(targets: SLATargets, where: str) -> None:
    seconds = [targets.urgent, targets.high, targets.normal, targets.low]
    if any(later < earlier for earlier, later in zip(seconds, seconds[1:], strict=False)):
        raise ValueError(
            f"{where}: targets must not decrease as priority drops (urgent <= high <= normal <= low), got "
            f"urgent {targets.urgent}, high {targets.high}, normal {targets.normal}, low {targets.low}"
        )


class SLAPolicyInput(ApiModel):
    """PUT /brands/{id}/sla-policy: the new policy; it applies to waits that start from now on."""

    model_config = ConfigDict(extra="forbid")

    targets: SLATargets = Field(
        default_factory=SLATargets, description="Seconds allowed per priority; urgent <= high <= normal <= low."
    )
    channel_targets: dict[Channel, SLATargets] = Field(
        default_factory=dict, max_length=MAX_CHANNELS, description="Overrides per channel."
    )
    clock: Clock = Clock.CALENDAR
    at_risk_fraction: float = Field(default=0.8, gt=0, lt=1)

    @model_validator(mode="after")
    def _ordered_targets(self) -> SLAPolicyInput:
        _targets_rise_with_lower_priority(self.targets, "targets")
        for channel, targets in self.channel_targets.items():
            _targets_rise_with_lower_priority(targets, f"channel_targets.{channel}")
        return self


class SLAPolicyOut(ApiModel):
    version: int
    effective_from: datetime = Field(description="Applies to waits starting at or after this moment.")
    targets: SLATargets
    channel_targets: dict[str, SLATargets]
    clock: Clock
    at_risk_fraction: float


class SLAPolicyResponse(ApiModel):
    """GET/PUT /brands/{id}/sla-policy."""

    brand_id: BrandId
    current: SLAPolicyOut
    history: list[SLAPolicyOut] = Field(description="Every version, oldest first.")


class BrandResponse(ApiModel):
    """GET/PUT /brands/{id}."""

    id: BrandId
    name: str
    handles: dict[str, list[str]]
    calendar: BusinessCalendar
    auto_reply_patterns: list[str]
    handoff_patterns: list[str]
    priority_rules: list[PriorityRule]
    sla_policy: SLAPolicyOut = Field(description="The policy in force now.")


class BrandListItem(ApiModel):
    id: BrandId
    name: str


class BrandList(ApiModel):
    """GET /brands."""

    items: list[BrandListItem]


class SourceHealth(ApiModel):
    id: str
    status: Literal["ok", "failing", "never_succeeded", "disabled"] = Field(
        description="failing: the last poll failed; never_succeeded: no poll has succeeded yet."
    )
    last_success_at: datetime | None
    lag_seconds: float | None = Field(description="Seconds since the last successful poll.")
    newest_post_at: datetime | None
    newest_post_age_seconds: float | None
    last_error: str | None
    last_error_at: datetime | None


class HealthResponse(ApiModel):
    """GET /health."""

    status: Literal["ok", "degraded"] = Field(description="ok when every enabled source is ok.")
    checked_at: datetime
    sources: list[SourceHealth]


class DeletedPostResponse(ApiModel):
    """A post removed on request: its thread is measured again without it."""

    channel: str
    conversation_id: str
    post_id: str
    deleted_at: datetime


# --- sources (PUT/GET/DELETE /sources/{id}, GET /sources) ------------------------------------

SourceKindName = Literal["x", "mastodon", "bluesky", "reddit", "replay"]
HttpUrl = Annotated[str, Field(max_length=500, pattern=r"^https?://[^\s/]+(/[^\s]*)?$")]


class SourceInput(ApiModel):
    """PUT /sources/{id}: a brand's account on a network, or an export to replay. Unknown fields are refused."""

    model_config = ConfigDict(extra="forbid")

    kind: SourceKindName
    brand_id: BrandId | None = Field(default=None, description="A configured brand (PUT /brands/{id} first).")
    account_id: str | None = Field(
        default=None, max_length=200, description="X user id, Mastodon account id, Bluesky DID (not for Reddit)."
    )
    account_handle: str | None = Field(
        default=None, min_length=1, max_length=100, description="The brand's handle on the network, without '@'."
    )
    base_url: HttpUrl | None = Field(default=None, description="The network's API (required for Mastodon).")
    auth_url: HttpUrl | None = Field(default=None, description="Reddit: where tokens are issued.")
    poll_every_seconds: int = Field(default=300, ge=60, le=86_400, description="How often the source is polled.")
    credentials_name: str | None = Field(
        default=None,
        min_length=1,
        max_length=512,
        description="A Secrets Manager secret under CredentialsSecretPrefix, or an SSM SecureString under "
        "CredentialsParameterPath (starts with '/'), holding a JSON object of strings. Only its name is stored.",
    )
    enabled: bool = True
    initial_lookback_hours: int = Field(default=24, ge=1, le=720, description="How far back the first poll reads.")
    replay_uri: str | None = Field(
        default=None, max_length=1024, pattern=r"^s3://[^\s/]+/\S+$", description="Replay: s3://bucket/key."
    )
    replay_format: Literal["twcs", "jsonl"] | None = None


class SourcePolling(ApiModel):
    next_poll_at: datetime | None = Field(description="When the ingest tick polls it next; null: at the next tick.")
    last_poll_at: datetime | None
    last_poll_status: str | None = Field(description="completed, deadline, throttled, lease_lost or failed.")
    last_error: str | None


class DryRunReport(ApiModel):
    """What the source's next poll would fetch, read without writing anything."""

    status: Literal["completed", "more", "throttled", "failed", "skipped"] = Field(
        description="completed: read everything new; more: stopped at the page or time cap; failed: see message; "
        "skipped: export replays are not dry-run."
    )
    pages: int
    would_store: int = Field(description="Posts read (a post already stored would be written as a no-op).")
    rejected: int = Field(description="Items that would be parked as malformed.")
    ignored: int = Field(description="Items that are no post by design (reposts, likes, private messages).")
    deleted: int = Field(description="Deletions read.")
    first_post_ids: list[str] = Field(description="The first few post ids read.")
    newest_post_at: datetime | None
    from_stored_cursor: bool = Field(description="False: read as the first poll would (initial look-back).")
    message: str | None = Field(description="Why it failed, or was throttled or skipped.")
    budget_seconds: float = Field(description="The most time the dry run could take.")
    max_pages: int


class SourceResponse(ApiModel):
    """GET/PUT /sources/{id}. Credentials are named, never shown."""

    id: str
    kind: SourceKindName
    brand_id: BrandId | None
    account_id: str | None
    account_handle: str | None
    base_url: str | None
    auth_url: str | None
    poll_every_seconds: int
    credentials_name: str | None
    enabled: bool
    initial_lookback_hours: int
    replay_uri: str | None
    replay_format: Literal["twcs", "jsonl"] | None
    polling: SourcePolling | None = Field(description="Null in a dry run (nothing stored).")
    dry_run: DryRunReport | None = Field(default=None, description="Only with ?dry_run=true.")


class SourceList(ApiModel):
    """GET /sources."""

    items: list[SourceResponse]


class SourceDeleted(ApiModel):
    """DELETE /sources/{id}."""

    id: str
    deleted: bool
    cursor_kept: bool = Field(description="True: PUT the same id again and it resumes where it stopped.")


# Recovery (issue 16, item 4): GET /metrics/recovery.


class RecoveryFigures(ApiModel):
    """Recovery of answered waits whose customer was negative before the answer (logic.recovery)."""

    negative: int = Field(
        ge=0,
        description="Answered waits (first and next) whose customer's last post before the answer was negative "
        "(VADER compound <= -0.05).",
    )
    followed_up: int = Field(ge=0, description="Of those, waits whose customer has posted again since the answer.")
    recovered: int = Field(ge=0, description="Of those followed up, waits whose customer's next post was non-negative.")
    no_follow_up: int = Field(
        ge=0, description="Answered after a negative post, and the customer has not posted since: not a failure."
    )
    recovery_rate: float | None = Field(description="recovered / followed_up; null when no one followed up.")


class RecoveryBand(RecoveryFigures):
    response_band: ResponseBand = Field(
        description="How long the customer waited for the answer, in calendar time: under 15 minutes, 15 to 60 "
        "minutes, 1 to 4 hours, or longer (each band includes its lower bound)."
    )


class RecoveryResponse(RecoveryFigures):
    """GET /metrics/recovery: the brand's recovery over the window, in total and per response band."""

    brand: BrandId
    channel: Channel | None
    priority: Priority | None
    window: Window = Field(description="Waits that started in this window.")
    by_response_band: list[RecoveryBand] = Field(description="Fastest band first; every band, empty ones too.")


# Live wait estimate (issue 16, item 5): GET /brands/{id}/eta.


class EtaInterval(ApiModel):
    low_seconds: float = Field(ge=0, description="The 5th percentile of the trailing 7 days' first responses.")
    high_seconds: float = Field(ge=0, description="The 95th percentile of the trailing 7 days' first responses.")
    coverage: float = Field(
        description="The share of actual waits it is meant to hold: 0.8. The 5th-95th percentile range, not the "
        "10th-90th, because that is the range that held 80% of actual waits in the backtest (docs/insights.md)."
    )


class EtaBasedOn(ApiModel):
    """What the estimate was made from: the sample sizes, and the backlog it was made alongside."""

    recent_answered: int = Field(
        ge=0, description="First waits that started in the trailing 7 days and have been answered."
    )
    hour_of_week_answered: int = Field(
        ge=0,
        description="Of first waits that started within an hour of this hour of the week, this week and in the 4 "
        "weeks before, those answered.",
    )
    answers_per_hour: float = Field(ge=0, description="recent_answered per hour of the trailing 7 days.")
    open_waits: int | None = Field(
        description="Customers of the brand (and channel, when asked) waiting for an answer now, as the sweeper last "
        "counted them (every priority); null before its first count."
    )
    open_waits_as_of: datetime | None = Field(description="When the sweeper counted them.")
    clearance_seconds: float | None = Field(
        description="How long answering open_waits would take at answers_per_hour. Reported, not added to the "
        "estimate: in the backtest, adding it made the estimate worse."
    )


class EtaResponse(ApiModel):
    """GET /brands/{id}/eta: how long a mention arriving now will likely wait for its first response."""

    brand: BrandId
    channel: Channel | None
    priority: Priority | None
    as_of: datetime = Field(description="The instant the estimate is for (now).")
    basis: Literal["hour_of_week", "recent", "not_enough_history"] = Field(
        description="hour_of_week: the expected wait is the median first response at this hour of the week (this "
        "week's last hours and the same hours of the 4 weeks before); recent: too few of those, the median of the "
        "trailing 7 days; not_enough_history: fewer than 5 answered first waits in the trailing 7 days, no estimate."
    )
    expected_seconds: float | None = Field(description="The expected first-response time; null without enough history.")
    interval: EtaInterval | None = Field(description="An 80% interval around it; null without enough history.")
    based_on: EtaBasedOn
    message: str | None = Field(description="Why there is no estimate, when there is none.")


class SurgePostOut(ApiModel):
    """One post a surge shows: an unanswered mention of it when it opened, the most exposed first."""

    channel: str
    post_id: str
    conversation_id: str
    customer: str
    posted_at: datetime
    exposure: int = Field(description="The author's reach plus the post's reposts, where the network reports them.")
    url: str | None
    excerpt: str


class SurgeOut(ApiModel):
    """One surge episode: a brand's channel receiving far more mentions than its own baseline."""

    id: str = Field(description="`<brand>:<channel>:<slot it opened in>`: the same in the alert.")
    channel: str = Field(description="The channel, or `*`: every channel of a brand seen on several, together.")
    status: Literal["open", "closed"]
    started_at: datetime = Field(description="The start of the first 5-minute slot of the window that opened it.")
    opened_at: datetime = Field(description="When the sweeper saw it.")
    ended_at: datetime | None = Field(description="The start of the slot in which the rate was judged returned.")
    closed_at: datetime | None = Field(description="When the sweeper saw the rate return; null while open.")
    window_minutes: int = Field(description="The evaluation window that opened it: 5 or 15 minutes.")
    arrivals: int = Field(description="Waits opened (mentions) in that window.")
    expected: float = Field(description="What the brand's baseline expected in that window.")
    ratio: float = Field(description="arrivals / expected.")
    baseline_per_5min: float = Field(description="The baseline it is judged against until it closes.")
    peak_arrivals_per_5min: int = Field(description="The busiest 5-minute slot seen while it was open.")
    top_posts: list[SurgePostOut]


class SurgeList(ApiModel):
    """GET /brands/{id}/surges."""

    brand_id: str
    since: datetime
    until: datetime
    open: list[SurgeOut] = Field(description="Open now (whenever they started).")
    surges: list[SurgeOut] = Field(description="Opened in the window, open or closed, newest first.")
    truncated: bool = Field(description="More surges opened in the window than `limit`: narrow it.")
