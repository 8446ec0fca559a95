"""A demo dataset made by code: a few brands on several channels, two days of conversations ending now.

Brands answer after log-normally distributed delays (each brand its own median and spread;
the business-clock brand answers only in its open hours), customers sometimes follow up,
another customer sometimes joins a thread (a wait of their own, which the answer to the
first customer closes only when it names them too), some mentions are never answered,
and a few unanswered mentions are timed so that the sweeper marks them at risk and then
breached within the first minute of `make run`.
Everything is a replyclock Post or Brand, written as the replay connector's JSONL.
"""

from __future__ import annotations

import json
import math
import random
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from pathlib import Path

from replyclock.logic.business_time import add_business_seconds, business_seconds
from replyclock.models.domain import (
    AuthorRole,
    Brand,
    BusinessCalendar,
    Clock,
    OpenInterval,
    Post,
    SLAPolicy,
    SLATargets,
)

HISTORY = timedelta(hours=48)


@dataclass(frozen=True)
class BrandProfile:
    brand: Brand
    # Log-normal reply delay: median in seconds (on the brand's policy clock) and sigma.
    median_reply_seconds: float
    sigma: float
    conversations: int
    answer_rate: float
    auto_reply: str | None = None


def _policy(clock: Clock, urgent: int, high: int, normal: int, low: int) -> SLAPolicy:
    targets = SLATargets(urgent=urgent, high=high, normal=normal, low=low)
    return SLAPolicy(version=1, targets=targets, clock=clock, at_risk_fraction=0.8)


def demo_profiles() -> list[BrandProfile]:
    minute, hour = 60, 3600
    london_hours = BusinessCalendar(
        timezone="Europe/London",
        weekly_hours={
            **{day: [OpenInterval(start=time(8), end=time(20))] for day in range(5)},
            5: [OpenInterval(start=time(9), end=time(17))],
        },
        holiday_country="GB",
    )
    return [
        BrandProfile(
            brand=Brand(
                id="acme",
                name="Acme Mobile",
                handles={"x": ["acmehelp"], "mastodon": ["acme"]},
                auto_reply_patterns=[r"^Thanks for contacting Acme"],
                sla_policies=[_policy(Clock.CALENDAR, 15 * minute, 30 * minute, 1 * hour, 4 * hour)],
            ),
            median_reply_seconds=22 * minute,
            sigma=0.9,
            conversations=130,
            answer_rate=0.93,
            auto_reply="Thanks for contacting Acme! A human will be with you shortly.",
        ),
        BrandProfile(
            brand=Brand(
                id="northwind",
                name="Northwind Air",
                handles={"x": ["northwindair"], "bluesky": ["northwind.bsky.social"]},
                sla_policies=[_policy(Clock.CALENDAR, 10 * minute, 30 * minute, 2 * hour, 8 * hour)],
            ),
            median_reply_seconds=50 * minute,
            sigma=1.1,
            conversations=110,
            answer_rate=0.88,
        ),
        BrandProfile(
            brand=Brand(
                id="globex",
                name="Globex Bank",
                handles={"x": ["globexbank"], "reddit": ["globex_support"]},
                calendar=london_hours,
                sla_policies=[_policy(Clock.BUSINESS, 30 * minute, 1 * hour, 2 * hour, 8 * hour)],
            ),
            median_reply_seconds=35 * minute,
            sigma=0.8,
            conversations=90,
            answer_rate=0.95,
        ),
    ]


_QUESTIONS = (
    "my bill doubled this month, can someone explain?",
    "how do I change the name on my account?",
    "still waiting for the refund you promised last week",
    "is there a way to get a paper invoice?",
    "the app logs me out every few minutes",
    "can I move my plan to another country?",
    "great service today, thank you!",
    "who do I talk to about a lost card?",
)
_URGENT = ("the app is down for everyone here", "outage again in my area?", "payments not working at all")
_SAME_HERE = ("same problem here", "any news? I have this too", "+1, same for me since this morning")
_FOLLOW_UPS = ("that did not help, anything else?", "thanks, and what about the fee?", "done, still broken")
_ANSWERS = (
    "sorry about that! Please DM us your account number and we'll look into it.",
    "we've fixed it on our side, could you try again?",
    "here's how: Settings > Account > Details. Anything else?",
    "thanks for your patience, a refund is on its way.",
)


@dataclass
class DemoDataset:
    profiles: list[BrandProfile]
    posts: list[Post] = field(default_factory=list)
    now: datetime = field(default_factory=lambda: datetime.now(UTC))

    @property
    def brands(self) -> list[Brand]:
        return [profile.brand for profile in self.profiles]

    def write_jsonl(self, path: Path) -> Path:
        ordered = sorted(self.posts, key=lambda post: post.sort_key)
        path.write_text("".join(json.dumps(post.model_dump(mode="json", exclude_none=True)) + "\n" for post in ordered))
        return path


class _Builder:
    def __init__(self, seed: int, now: datetime) -> None:
        self.random = random.Random(seed)
        self.now = now
        self.next_id = 1_000_000
        self.posts: list[Post] = []

    def post(
        self,
        channel: str,
        author: str,
        at: datetime,
        text: str,
        *,
        brand: Brand | None = None,
        reply_to: Post | None = None,
        mentions: tuple[str, ...] = (),
        reach: int | None = None,
    ) -> Post:
        self.next_id += self.random.randint(1, 40)
        post_id = str(self.next_id)
        post = Post(
            channel=channel,
            id=post_id,
            author=author,
            author_role=AuthorRole.BRAND if brand else AuthorRole.CUSTOMER,
            brand_id=brand.id if brand else None,
            created_at=at,
            text=text,
            url=f"https://{channel}.example/{author}/{post_id}",
            in_reply_to=reply_to.id if reply_to else None,
            conversation_id=reply_to.conversation_id if reply_to else post_id,
            mentions=mentions,
            author_reach=reach,
        )
        self.posts.append(post)
        return post

    def customer(self) -> str:
        return f"customer{self.random.randint(1, 400):03d}"

    def delay(self, profile: BrandProfile) -> float:
        return profile.median_reply_seconds * math.exp(self.random.gauss(0.0, profile.sigma))

    def after(self, profile: BrandProfile, start: datetime, seconds: float) -> datetime:
        """`seconds` on the brand's policy clock after start."""
        if profile.brand.current_policy.clock is Clock.BUSINESS:
            return add_business_seconds(start, seconds, profile.brand.calendar)
        return start + timedelta(seconds=seconds)


def generate(now: datetime | None = None, seed: int = 7, imminent: bool = True) -> DemoDataset:
    """Two days of conversations ending at `now` (default: the current time)."""
    now = (now or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    profiles = demo_profiles()
    builder = _Builder(seed, now)
    for profile in profiles:
        for _ in range(profile.conversations):
            _conversation(builder, profile, now - HISTORY + builder.random.random() * (HISTORY - timedelta(minutes=5)))
        if imminent:
            _imminent_mentions(builder, profile)
    return DemoDataset(profiles, builder.posts, now)


def _conversation(builder: _Builder, profile: BrandProfile, start: datetime) -> None:
    brand, rnd = profile.brand, builder.random
    channel = rnd.choice(sorted(brand.handles))
    handle = brand.handles[channel][0]
    urgent = rnd.random() < 0.08
    reach = 25_000 if rnd.random() < 0.1 else rnd.randint(10, 3000)
    text = f"@{handle} {rnd.choice(_URGENT if urgent else _QUESTIONS)}"
    author = builder.customer()
    mention = builder.post(channel, author, start, text, mentions=(handle,), reach=reach)
    if profile.auto_reply and rnd.random() < 0.5:
        builder.post(
            channel,
            handle,
            start + timedelta(seconds=rnd.randint(2, 20)),
            profile.auto_reply,
            brand=brand,
            reply_to=mention,
        )
    joined: tuple[str, datetime] | None = None
    if rnd.random() < 0.15:
        other, joined_at = builder.customer(), start + timedelta(seconds=rnd.randint(30, 900))
        if other != author and joined_at < builder.now:
            text = f"@{handle} {rnd.choice(_SAME_HERE)}"
            builder.post(channel, other, joined_at, text, reply_to=mention, mentions=(handle,))
            joined = (other, joined_at)
    if rnd.random() > profile.answer_rate:
        return
    answered_at = builder.after(profile, start, builder.delay(profile))
    if answered_at >= builder.now:
        return  # not answered yet
    # Half the time the answer also names the customer who joined before it; otherwise their wait stays open.
    named = (author,) if joined is None or joined[1] > answered_at or rnd.random() < 0.5 else (author, joined[0])
    answer = builder.post(
        channel,
        handle,
        answered_at,
        " ".join(f"@{name}" for name in named) + f" {rnd.choice(_ANSWERS)}",
        brand=brand,
        reply_to=mention,
        mentions=named if len(named) > 1 else (),
    )
    if rnd.random() < 0.35:
        follow_up_at = answered_at + timedelta(seconds=rnd.randint(60, 1800))
        if follow_up_at >= builder.now:
            return
        follow_up = builder.post(channel, author, follow_up_at, f"@{handle} {rnd.choice(_FOLLOW_UPS)}", reply_to=answer)
        second_at = builder.after(profile, follow_up_at, builder.delay(profile) / 2)
        if second_at < builder.now:
            builder.post(
                channel, handle, second_at, f"@{author} {rnd.choice(_ANSWERS)}", brand=brand, reply_to=follow_up
            )


def _imminent_mentions(builder: _Builder, profile: BrandProfile) -> None:
    """Unanswered normal-priority mentions that turn at risk, then breach, within the next minute."""
    brand = profile.brand
    policy = brand.current_policy
    target = policy.targets.normal
    plans = [target - builder.random.uniform(15, 45) for _ in range(3)]
    plans += [policy.at_risk_fraction * target - builder.random.uniform(5, 40) for _ in range(2)]
    for waited in plans:
        start = _start_for(builder, profile, waited)
        if start is None:
            return  # the business-clock brand is closed now: its clock is not running
        channel = sorted(brand.handles)[0]
        handle = brand.handles[channel][0]
        builder.post(
            channel, builder.customer(), start, f"@{handle} {builder.random.choice(_QUESTIONS)}", mentions=(handle,)
        )


def _start_for(builder: _Builder, profile: BrandProfile, waited: float) -> datetime | None:
    """When a wait must have started to have lasted `waited` seconds of the brand's clock by now."""
    now = builder.now
    if profile.brand.current_policy.clock is Clock.CALENDAR:
        return now - timedelta(seconds=waited)
    calendar = profile.brand.calendar
    # Only meaningful while the brand is open now and stays open for the next minutes.
    if business_seconds(now, now + timedelta(minutes=2), calendar) < 120:
        return None
    low, high = now - timedelta(days=14), now
    if business_seconds(low, now, calendar) < waited:
        return None
    for _ in range(60):
        middle = low + (high - low) / 2
        if business_seconds(middle, now, calendar) > waited:
            low = middle
        else:
            high = middle
    return high.replace(microsecond=0)
