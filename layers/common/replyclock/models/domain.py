"""Domain vocabulary: posts, brands, SLA policies, business calendars and waits.

Pure pydantic, no AWS. Datetimes are always timezone-aware UTC.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)

# A channel is a network slug ("x", "mastodon", "bluesky", "reddit", ...). It is a
# constrained string rather than an enum so a brand can split one network into
# several channels (regional accounts) without a code change.
Channel = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9_-]{0,31}$")]
BrandId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")]
PostId = Annotated[str, StringConstraints(min_length=1, max_length=512)]


def _require_utc(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime must be timezone-aware")
    try:
        return value.astimezone(UTC)
    except OverflowError:
        # 9999-12-31T23:59-05:00 parses but has no UTC time; pydantic reports only ValueErrors as invalid.
        raise ValueError("datetime is out of range in UTC") from None


UtcDatetime = Annotated[datetime, AfterValidator(_require_utc)]


class Priority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"

    @property
    def rank(self) -> int:
        """Higher is more pressing."""
        return _PRIORITY_RANK[self]


_PRIORITY_RANK = {Priority.LOW: 0, Priority.NORMAL: 1, Priority.HIGH: 2, Priority.URGENT: 3}


class AuthorRole(StrEnum):
    BRAND = "brand"
    CUSTOMER = "customer"


class Clock(StrEnum):
    CALENDAR = "calendar"
    BUSINESS = "business"


class WaitKind(StrEnum):
    FIRST = "first"
    NEXT = "next"


class WaitStatus(StrEnum):
    PENDING = "pending"
    AT_RISK = "at_risk"
    MET = "met"
    BREACHED = "breached"


class Engagement(BaseModel):
    """Counts a network gives for a post when it is read (None: the network does not give that count)."""

    model_config = ConfigDict(frozen=True)

    replies: int | None = Field(default=None, ge=0)
    reposts: int | None = Field(default=None, ge=0)
    quotes: int | None = Field(default=None, ge=0)
    likes: int | None = Field(default=None, ge=0)
    impressions: int | None = Field(default=None, ge=0)
    # Reddit's score (upvotes minus downvotes, fuzzed): may be negative.
    score: int | None = None


class Post(BaseModel):
    """One ingested post, keyed by (channel, id).

    What measuring reads (author, times, parent, mentions, labels, quote_of, private) is fixed
    once stored; text, edited_at, engagement, author_reach and url follow later reads of the post
    (an edit, new counts). docs/connectors.md says what each network's items become.
    """

    model_config = ConfigDict(frozen=True)

    channel: Channel
    id: PostId
    author: str = Field(min_length=1, max_length=256)
    author_role: AuthorRole
    # Set when author_role is BRAND: which configured brand spoke.
    brand_id: BrandId | None = None
    created_at: UtcDatetime
    text: str = Field(default="", max_length=40_000)
    url: str | None = Field(default=None, max_length=2048)
    in_reply_to: PostId | None = None
    conversation_id: PostId
    # Handles mentioned in the post, lower-case, without the leading "@".
    # Bounded so a hostile payload cannot make a post item exceed DynamoDB's 400 KB item limit.
    mentions: tuple[Annotated[str, StringConstraints(max_length=256)], ...] = Field(default=(), max_length=200)
    author_reach: int | None = Field(default=None, ge=0)
    # The post this one quotes (a quote of a brand post carries that brand's handle in mentions).
    quote_of: PostId | None = None
    # Moderation labels on the post or its author (Bluesky labelers; Reddit: distinguished as moderator/admin).
    labels: tuple[Annotated[str, StringConstraints(max_length=128)], ...] = Field(default=(), max_length=50)
    # Seen only by the people it names or the author's followers (Mastodon direct/private visibility).
    private: bool = False
    # When the author last edited it (the post keeps its first id and time).
    edited_at: UtcDatetime | None = None
    engagement: Engagement | None = None
    # VADER's compound score of the text as first stored, -1 to +1 (logic.sentiment): set by the post store,
    # fixed once stored like what measuring reads; None for a post stored before scores were kept.
    sentiment: float | None = Field(default=None, ge=-1, le=1)

    @field_validator("labels")
    @classmethod
    def _normalise_labels(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({label.strip().lower() for label in value if label.strip()}))

    @field_validator("mentions")
    @classmethod
    def _normalise_mentions(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(sorted({handle.lower().lstrip("@") for handle in value if handle.strip("@")}))

    @model_validator(mode="after")
    def _brand_posts_name_their_brand(self) -> Post:
        if self.author_role is AuthorRole.BRAND and not self.brand_id:
            raise ValueError("a brand post needs brand_id")
        if self.author_role is AuthorRole.CUSTOMER and self.brand_id:
            raise ValueError("a customer post has no brand_id")
        return self

    @property
    def sort_key(self) -> tuple[datetime, int, str]:
        """Posts are ordered by (created_at, id); numeric ids compare numerically."""
        return (self.created_at, len(self.id), self.id)


class PostDeletion(BaseModel):
    """A post removed upstream: a network's tombstone, a delete line of an export, or an admin's request.

    conversation_id is known when the tombstone carries it; otherwise the post is found by its identity.
    """

    model_config = ConfigDict(frozen=True)

    channel: Channel
    id: PostId
    conversation_id: PostId | None = None


def _wall_clock(value: time) -> time:
    # An offset means nothing in the calendar's own timezone, and naive and aware times do not compare.
    if value.tzinfo is not None:
        raise ValueError("open hours are wall-clock times in the calendar's timezone, without a UTC offset")
    return value


# JSON Schema's "time" format is RFC 3339's full-time, with an offset: the schema says what is really taken and given.
WallClockTime = Annotated[
    time,
    AfterValidator(_wall_clock),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": r"^(([01][0-9]|2[0-3]):[0-5][0-9](:[0-5][0-9](\.[0-9]{1,6})?)?|24:00(:00)?)$",
            "description": "Local wall-clock time, HH:MM or HH:MM:SS, no UTC offset.",
            "examples": ["09:00", "17:30:00"],
        }
    ),
]


class OpenInterval(BaseModel):
    """Open hours on one weekday, local wall-clock time; end may be 24:00 (written "24:00")."""

    model_config = ConfigDict(frozen=True)

    start: WallClockTime
    end: WallClockTime
    ends_at_midnight: bool = False

    @model_validator(mode="before")
    @classmethod
    def _parse_midnight(cls, data: object) -> object:
        if isinstance(data, dict) and data.get("end") in ("24:00", "24:00:00"):
            return {**data, "end": time(0), "ends_at_midnight": True}
        return data

    @model_validator(mode="after")
    def _start_before_end(self) -> OpenInterval:
        if not self.ends_at_midnight and self.end <= self.start:
            raise ValueError("open interval must end after it starts (use 24:00 for midnight)")
        return self


def _default_week() -> dict[int, list[OpenInterval]]:
    nine_to_five = [OpenInterval(start=time(9), end=time(17))]
    return {weekday: list(nine_to_five) for weekday in range(5)}


class BusinessCalendar(BaseModel):
    """When the care team works: weekly hours in a timezone, minus holidays."""

    model_config = ConfigDict(frozen=True)

    timezone: str = "UTC"
    # Monday is 0, as in datetime.weekday().
    weekly_hours: dict[int, list[OpenInterval]] = Field(default_factory=_default_week)
    holidays: list[date] = Field(default_factory=list)
    holiday_country: str | None = Field(default=None, pattern=r"^[A-Z]{2}$")
    holiday_subdivision: str | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as error:
            raise ValueError(f"unknown timezone {value!r}") from error
        return value

    @field_validator("weekly_hours")
    @classmethod
    def _weekdays_and_some_hours(cls, value: dict[int, list[OpenInterval]]) -> dict[int, list[OpenInterval]]:
        if any(day not in range(7) for day in value):
            raise ValueError("weekly_hours keys are weekdays 0 (Monday) to 6 (Sunday)")
        if not any(value.values()):
            raise ValueError("weekly_hours needs at least one open interval")
        return value

    @model_validator(mode="after")
    def _known_holiday_country(self) -> BusinessCalendar:
        if self.holiday_country is not None:
            import holidays

            try:
                holidays.country_holidays(self.holiday_country, subdiv=self.holiday_subdivision, years=2020)
            except NotImplementedError as error:
                raise ValueError(f"unsupported holiday country {self.holiday_country!r}") from error
        return self

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


PrioritySeconds = Annotated[int, Field(gt=0, le=366 * 24 * 3600)]


class SLATargets(BaseModel):
    model_config = ConfigDict(frozen=True)

    urgent: PrioritySeconds = 15 * 60
    high: PrioritySeconds = 60 * 60
    normal: PrioritySeconds = 4 * 60 * 60
    low: PrioritySeconds = 24 * 60 * 60

    def for_priority(self, priority: Priority) -> int:
        return int(getattr(self, priority.value))


class SLAPolicy(BaseModel):
    """Targets per priority (optionally per channel), on one clock.

    A policy applies to waits that *start* at or after effective_from; each wait
    records the version it was measured against.
    """

    model_config = ConfigDict(frozen=True)

    version: int = Field(default=1, ge=0)
    effective_from: UtcDatetime = datetime(1970, 1, 1, tzinfo=UTC)
    targets: SLATargets = Field(default_factory=SLATargets)
    channel_targets: dict[Channel, SLATargets] = Field(default_factory=dict)
    clock: Clock = Clock.CALENDAR
    at_risk_fraction: float = Field(default=0.8, gt=0, lt=1)

    def target_seconds(self, priority: Priority, channel: str) -> int:
        return self.channel_targets.get(channel, self.targets).for_priority(priority)


class PriorityRule(BaseModel):
    """A post matching any keyword, hashtag, or the reach threshold gets this priority."""

    model_config = ConfigDict(frozen=True)

    priority: Priority
    keywords: list[str] = Field(default_factory=list)
    hashtags: list[str] = Field(default_factory=list)
    min_reach: int | None = Field(default=None, ge=0)


class DirectMentions(StrEnum):
    """What a brand does with direct/private mentions (Mastodon direct or followers-only visibility)."""

    # Stored and measured on their own channel, `<channel>-dm` (the brand's handles there are its handles on <channel>).
    CHANNEL = "channel"
    # Stored and measured on the public channel, flagged private.
    FLAG = "flag"


# Bluesky's spam label and the labels that hide a post (global !hide/!takedown); Reddit moderator/admin speech.
DEFAULT_UNMEASURED_LABELS = ("!hide", "!takedown", "spam", "distinguished:admin", "distinguished:moderator")


class LabelPolicy(BaseModel):
    """Which labelled posts open no wait: they are stored and counted, but not measured."""

    model_config = ConfigDict(frozen=True)

    unmeasured: list[Annotated[str, StringConstraints(min_length=1, max_length=128)]] = Field(
        default_factory=lambda: list(DEFAULT_UNMEASURED_LABELS), max_length=100
    )

    @field_validator("unmeasured")
    @classmethod
    def _lower(cls, value: list[str]) -> list[str]:
        return sorted({label.strip().lower() for label in value})


def dm_channel(channel: str) -> str:
    """The channel a network's direct mentions are measured on when a brand keeps them apart."""
    return f"{channel}-dm"


def public_channel(channel: str) -> str:
    return channel.removesuffix("-dm")


# Brand answers that move the conversation to a private channel ("take it to DM"): RE2, case-insensitive
# (logic.patterns). They count as answers; the wait they close is flagged handed_off.
DEFAULT_HANDOFF_PATTERNS = (
    # "DM us", "please DM your booking number", "check your DMs", "we've replied to your DM"; not an agent's
    # initials signing a reply ("^DM", "*DM", "-DM").
    r"(?:^|[^\w^*~/-])dm(?:s|ing|ed)?\b",
    r"\bpm\s+(?:us|me)\b",
    r"\b(?:send|shoot|drop)\s+(?:us|me)\s+an?\s+(?:quick\s+)?pm\b",
    r"\b(?:via|by|in|through|over|into)\s+(?:an?\s+)?pms?\b",
    r"\bdirect(?:ly)?\s+messag",
    r"\bprivate(?:ly)?\s+messag",
    r"\bmessage\s+us\s+(?:directly|privately)\b",
    r"\bcheck\s+(?:your|ur)\s+(?:inbox|pms?)\b",
    # Links that open a direct message: X/Twitter compose, Messenger.
    r"(?:twitter|x)\.com/messages/compose",
    r"\bm\.me/",
    r"/direct_messages/",
)


def _default_rules() -> list[PriorityRule]:
    return [
        PriorityRule(priority=Priority.URGENT, hashtags=["#thissucks"], keywords=["outage", "is down", "not working"]),
        PriorityRule(priority=Priority.HIGH, min_reach=10_000),
    ]


class Brand(BaseModel):
    """A brand whose care team is measured."""

    model_config = ConfigDict(frozen=True)

    id: BrandId
    name: str = Field(min_length=1, max_length=200)
    # channel -> the brand's own handles there (lower-case, no "@").
    handles: dict[Channel, list[str]] = Field(default_factory=dict)
    calendar: BusinessCalendar = Field(default_factory=BusinessCalendar)
    auto_reply_patterns: list[str] = Field(default_factory=list)
    # An answer matching one moves the conversation to a private channel (see DEFAULT_HANDOFF_PATTERNS).
    handoff_patterns: list[str] = Field(default_factory=lambda: list(DEFAULT_HANDOFF_PATTERNS))
    priority_rules: list[PriorityRule] = Field(default_factory=_default_rules)
    # Oldest first; the last one is the policy in force now.
    sla_policies: list[SLAPolicy] = Field(default_factory=lambda: [SLAPolicy()], min_length=1)
    label_policy: LabelPolicy = Field(default_factory=LabelPolicy)
    direct_mentions: DirectMentions = DirectMentions.CHANNEL

    @field_validator("handles")
    @classmethod
    def _normalise_handles(cls, value: dict[str, list[str]]) -> dict[str, list[str]]:
        return {channel: sorted({h.lower().lstrip("@") for h in handles}) for channel, handles in value.items()}

    @field_validator("auto_reply_patterns", "handoff_patterns")
    @classmethod
    def _patterns_compile(cls, value: list[str]) -> list[str]:
        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as error:
                raise ValueError(f"pattern {pattern!r} is not a valid regex: {error}") from error
        return value

    @field_validator("sla_policies")
    @classmethod
    def _policies_in_order(cls, value: list[SLAPolicy]) -> list[SLAPolicy]:
        ordered = sorted(value, key=lambda policy: (policy.effective_from, policy.version))
        versions = [policy.version for policy in ordered]
        if len(set(versions)) != len(versions):
            raise ValueError("SLA policy versions must be unique")
        return ordered

    @property
    def current_policy(self) -> SLAPolicy:
        return self.sla_policies[-1]

    def policy_at(self, moment: datetime) -> SLAPolicy:
        """The policy in force at a moment (the first one for moments before all of them)."""
        in_force = self.sla_policies[0]
        for policy in self.sla_policies:
            if policy.effective_from <= moment:
                in_force = policy
        return in_force

    def handles_on(self, channel: str) -> frozenset[str]:
        """The brand's handles on a channel; without configured ones, its id stands as the handle."""
        configured = self.handles.get(channel) or self.handles.get(public_channel(channel))
        return frozenset(configured) if configured else frozenset({self.id.lower()})


CustomerHandle = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Wait(BaseModel):
    """One customer waiting for a brand in one conversation.

    Times are effective times: a post's own time, or its parent's effective time when the
    parent claims a later one (a reply never precedes what it answers).
    """

    model_config = ConfigDict(frozen=True)

    kind: WaitKind
    brand_id: BrandId
    channel: Channel
    conversation_id: PostId
    customer: CustomerHandle
    start_post_id: PostId
    started_at: UtcDatetime
    end_post_id: PostId | None = None
    ended_at: UtcDatetime | None = None
    calendar_seconds: float | None = None
    business_seconds: float | None = None
    priority: Priority
    policy_version: int
    clock: Clock
    target_seconds: int
    due_at: UtcDatetime
    at_risk_at: UtcDatetime
    status: WaitStatus
    # The answer that closed it moved the conversation to a private channel ("DM us").
    handed_off: bool = False
    # It opened after the customer's previous wait was handed off (the customer came back in public).
    after_handoff: bool = False
    # The audience of the opening post while the wait is open: the author's reach (followers) plus the post's
    # reposts, where the network reports them (logic.waits.exposure_of); None when it reports neither.
    exposure: int | None = Field(default=None, ge=0)
    # Recovery (logic.recovery): the sentiment of the customer's last post before the answer (their latest post
    # of the wait while it is open) and of their next post after the answer (None until they post again).
    sentiment_before: float | None = Field(default=None, ge=-1, le=1)
    sentiment_after: float | None = Field(default=None, ge=-1, le=1)

    @property
    def is_open(self) -> bool:
        return self.end_post_id is None

    def latency_on(self, clock: Clock) -> float | None:
        return self.calendar_seconds if clock is Clock.CALENDAR else self.business_seconds


class ConversationState(BaseModel):
    """One customer's waits for one brand in one conversation (a *lane*), as measure last computed them.

    A lane is stored as one bounded item: its latest wait, how many waits it has had and the
    order key of the last post that touched it. Earlier waits are archived, one immutable item
    each (`seq` 1, 2, ...; the lane item itself has seq None), so no item grows with a thread.
    """

    channel: Channel
    conversation_id: PostId
    brand_id: BrandId
    customer: CustomerHandle
    # None for the lane item; the wait's number (1 = first) for an archived wait.
    seq: int | None = Field(default=None, ge=1)
    # Increases by one on every write (measure or sweeper); writes are conditioned on it.
    version: int = Field(default=0, ge=0)
    # The lane item: [] or [its latest wait]; an archived wait: [that wait] (or [] once a recompute undid it).
    waits: list[Wait] = Field(default_factory=list, max_length=1)
    wait_count: int = Field(default=0, ge=0)
    last_key: str | None = None
    first_started_at: UtcDatetime | None = None

    @property
    def open_wait(self) -> Wait | None:
        return self.waits[-1] if self.waits and self.waits[-1].is_open else None

    @property
    def status(self) -> WaitStatus | None:
        """The status a care team cares about: the open wait's, else the last closed one's."""
        return self.waits[-1].status if self.waits else None

    @property
    def is_archive(self) -> bool:
        return self.seq is not None

    def same_content(self, other: ConversationState | None) -> bool:
        return other is not None and self.model_dump(exclude={"version"}) == other.model_dump(exclude={"version"})
