from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest

from replyclock.logic.waits import brands_in_conversation, carry_over_sweeper_statuses, compute_waits
from replyclock.models.domain import (
    Brand,
    BusinessCalendar,
    Clock,
    OpenInterval,
    Post,
    Priority,
    PriorityRule,
    SLAPolicy,
    SLATargets,
    WaitKind,
    WaitStatus,
)
from tests.support.builders import T0, at, brand, customer

ACME = Brand(id="acme", name="Acme", handles={"x": ["acme", "AcmeHelp"]}, auto_reply_patterns=[r"^Thanks for reaching"])
GLOBEX = Brand(id="globex", name="Globex")


def summary(posts: list[Post], who: Brand = ACME) -> list[tuple[str, str, str | None, float | None]]:
    return [
        (wait.kind.value, wait.start_post_id, wait.end_post_id, wait.calendar_seconds)
        for wait in compute_waits(posts, who)
    ]


@pytest.mark.parametrize(
    ("scenario", "posts", "expected"),
    [
        (
            "direct reply",
            [customer("1", 0), brand("2", 5, reply_to="1")],
            [("first", "1", "2", 300.0)],
        ),
        (
            "reply deeper in the thread answers the open wait",
            [
                customer("1", 0),
                customer("2", 1, "and another thing", reply_to="1", author="bob"),
                brand("3", 10, reply_to="2"),
            ],
            [("first", "1", "3", 600.0)],
        ),
        (
            "customer double-post before the answer: the wait starts at the first post",
            [customer("1", 0), customer("2", 3, "@acme hello??"), brand("3", 7)],
            [("first", "1", "3", 420.0)],
        ),
        (
            "brand speaks first: the customer's reply opens the first wait",
            [brand("1", 0, "@alice can we help?"), customer("2", 2, "yes please", reply_to="1"), brand("3", 4)],
            [("first", "2", "3", 120.0)],
        ),
        (
            "later customer posts open next waits",
            [customer("1", 0), brand("2", 5), customer("3", 20, "still broken"), brand("4", 50)],
            [("first", "1", "2", 300.0), ("next", "3", "4", 1800.0)],
        ),
        (
            "never answered stays open",
            [customer("1", 0)],
            [("first", "1", None, None)],
        ),
        (
            "a customer post not addressed to the brand opens no wait",
            [customer("1", 0, "@friend look at this")],
            [],
        ),
        (
            "a mention of a configured handle is addressed, case-insensitively",
            [customer("1", 0, "@AcmeHelp broken"), brand("2", 1)],
            [("first", "1", "2", 60.0)],
        ),
        (
            "duplicate posts count once",
            [customer("1", 0), customer("1", 0), brand("2", 5), brand("2", 5)],
            [("first", "1", "2", 300.0)],
        ),
        (
            "arrival order does not matter",
            [brand("2", 5, reply_to="1"), customer("1", 0)],
            [("first", "1", "2", 300.0)],
        ),
    ],
)
def test_waits_follow_the_conversation(
    scenario: str, posts: list[Post], expected: list[tuple[str, str, str | None, float | None]]
) -> None:
    assert summary(posts) == expected, scenario


def test_auto_reply_does_not_end_a_wait() -> None:
    # Given a customer, the brand's auto-reply, then a human answer
    posts = [customer("1", 0), brand("2", 1, "Thanks for reaching out! We'll reply soon."), brand("3", 30)]

    # When / Then the wait ends at the human answer
    assert summary(posts) == [("first", "1", "3", 1800.0)]


def test_reply_to_an_auto_reply_is_addressed_to_the_brand() -> None:
    posts = [
        brand("1", 0, "Thanks for reaching out", conversation="c1"),
        customer("2", 1, "ok", reply_to="1"),
        brand("3", 2),
    ]
    assert summary(posts) == [("first", "2", "3", 60.0)]


def test_two_brands_in_one_thread_are_measured_separately() -> None:
    # Given a customer mentioning both brands, each answering at its own pace
    posts = [
        customer("1", 0, "@acme @globex which of you broke my order?"),
        brand("2", 10, brand_id="globex"),
        brand("3", 45, brand_id="acme"),
    ]

    # Then each brand has its own first wait
    assert summary(posts, ACME) == [("first", "1", "3", 2700.0)]
    assert summary(posts, GLOBEX) == [("first", "1", "2", 600.0)]
    assert brands_in_conversation(posts, lambda channel, handle: {"acme": "acme", "globex": "globex"}.get(handle)) == {
        "acme",
        "globex",
    }


def test_another_brands_answer_does_not_end_the_wait() -> None:
    posts = [customer("1", 0, "@acme help"), brand("2", 5, brand_id="globex")]
    assert summary(posts, ACME) == [("first", "1", None, None)]


def test_ties_in_time_order_numeric_ids_numerically() -> None:
    # Given an answer stamped in the same second as the question but with a larger id
    posts = [brand("10", 0, reply_to="9"), customer("9", 0)]
    assert summary(posts) == [("first", "9", "10", 0.0)]


def test_closed_wait_status_compares_latency_with_the_target_of_its_priority() -> None:
    policy = SLAPolicy(targets=SLATargets(urgent=600, high=3600, normal=3600, low=3600))
    acme = ACME.model_copy(update={"sla_policies": [policy]})
    fast_urgent = [customer("1", 0, "@acme site is down #thissucks"), brand("2", 9)]
    slow_urgent = [customer("1", 0, "@acme outage again"), brand("2", 11)]

    [met] = compute_waits(fast_urgent, acme)
    [breached] = compute_waits(slow_urgent, acme)

    assert (met.priority, met.target_seconds, met.status) == (Priority.URGENT, 600, WaitStatus.MET)
    assert (breached.priority, breached.status) == (Priority.URGENT, WaitStatus.BREACHED)


def test_open_wait_is_pending_with_due_and_at_risk_times() -> None:
    policy = SLAPolicy(targets=SLATargets(normal=3600), at_risk_fraction=0.75)
    [wait] = compute_waits([customer("1", 0)], ACME.model_copy(update={"sla_policies": [policy]}))

    assert wait.status is WaitStatus.PENDING
    assert wait.due_at == at(60)
    assert wait.at_risk_at == at(45)


def test_wait_records_the_policy_in_force_when_it_started() -> None:
    # Given a policy change at minute 30
    old = SLAPolicy(version=1, targets=SLATargets(normal=3600))
    new = SLAPolicy(version=2, effective_from=at(30), targets=SLATargets(normal=600))
    acme = ACME.model_copy(update={"sla_policies": [old, new]})
    posts = [customer("1", 0), brand("2", 20), customer("3", 40, "again"), brand("4", 55)]

    # When
    first, following = compute_waits(posts, acme)

    # Then the earlier wait keeps version 1, the later one uses version 2
    assert (first.policy_version, first.target_seconds, first.status) == (1, 3600, WaitStatus.MET)
    assert (following.policy_version, following.target_seconds, following.status) == (2, 600, WaitStatus.BREACHED)


LONDON_9_TO_5 = BusinessCalendar(
    timezone="Europe/London",
    weekly_hours={day: [OpenInterval(start=time(9), end=time(17))] for day in range(5)},
    holidays=[datetime(2026, 12, 25).date()],
)
BUSINESS_ACME = ACME.model_copy(
    update={
        "calendar": LONDON_9_TO_5,
        "sla_policies": [SLAPolicy(clock=Clock.BUSINESS, targets=SLATargets(normal=1800))],
    }
)


@pytest.mark.parametrize(
    ("scenario", "asked", "answered", "business_seconds"),
    [
        ("inside hours", datetime(2026, 11, 18, 10, 0), datetime(2026, 11, 18, 10, 20), 1200.0),
        ("overnight", datetime(2026, 11, 18, 16, 50), datetime(2026, 11, 19, 9, 10), 1200.0),
        ("across a weekend", datetime(2026, 11, 20, 16, 55), datetime(2026, 11, 23, 9, 5), 600.0),
        ("across a holiday", datetime(2026, 12, 24, 16, 50), datetime(2026, 12, 28, 9, 20), 1800.0),
        ("over the spring DST switch", datetime(2026, 3, 27, 16, 0), datetime(2026, 3, 30, 10, 0), 7200.0),
        ("over the autumn DST switch", datetime(2026, 10, 23, 16, 0), datetime(2026, 10, 26, 10, 0), 7200.0),
    ],
)
def test_business_clock_counts_only_open_hours(
    scenario: str, asked: datetime, answered: datetime, business_seconds: float
) -> None:
    london = LONDON_9_TO_5.zone
    start = asked.replace(tzinfo=london)
    posts = [
        customer("1", 0, start=start),
        brand("2", (answered.replace(tzinfo=london) - start) / timedelta(minutes=1), start=start),
    ]

    [wait] = compute_waits(posts, BUSINESS_ACME)

    assert wait.business_seconds == pytest.approx(business_seconds), scenario
    assert wait.clock is Clock.BUSINESS


def test_friday_evening_wait_on_a_business_clock_is_due_monday_morning() -> None:
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=LONDON_9_TO_5.zone)
    [wait] = compute_waits([customer("1", 0, start=friday_evening)], BUSINESS_ACME)
    assert wait.due_at == datetime(2026, 11, 23, 9, 30, tzinfo=LONDON_9_TO_5.zone).astimezone(UTC)


def test_a_late_answer_on_a_business_clock_breaches_exactly_after_due() -> None:
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=LONDON_9_TO_5.zone)
    on_time = [customer("1", 0, start=friday_evening), brand("2", 3 * 24 * 60 - 8 * 60 - 25, start=friday_evening)]
    late = [customer("1", 0, start=friday_evening), brand("2", 3 * 24 * 60 - 8 * 60 - 24, start=friday_evening)]
    assert compute_waits(on_time, BUSINESS_ACME)[0].status is WaitStatus.MET
    assert compute_waits(late, BUSINESS_ACME)[0].status is WaitStatus.BREACHED


def test_sweeper_marks_survive_recomputation_of_the_same_open_wait() -> None:
    [open_wait] = compute_waits([customer("1", 0)], ACME)
    swept = open_wait.model_copy(update={"status": WaitStatus.BREACHED})

    # When a double-post arrives and the waits are recomputed
    recomputed = compute_waits([customer("1", 0), customer("2", 5, "@acme hello?")], ACME)

    assert carry_over_sweeper_statuses(recomputed, [swept])[0].status is WaitStatus.BREACHED


def test_sweeper_marks_do_not_outlive_the_answer() -> None:
    [open_wait] = compute_waits([customer("1", 0)], ACME)
    swept = open_wait.model_copy(update={"status": WaitStatus.AT_RISK})

    recomputed = compute_waits([customer("1", 0), brand("2", 5)], ACME)

    assert carry_over_sweeper_statuses(recomputed, [swept])[0].status is WaitStatus.MET


def test_first_wait_is_first_even_when_it_comes_after_a_brand_post() -> None:
    [wait] = compute_waits([brand("1", 0), customer("2", 1, "thanks", reply_to="1")], ACME)
    assert wait.kind is WaitKind.FIRST


def test_priority_rules_apply_to_the_post_that_opens_the_wait() -> None:
    rules = [
        PriorityRule(priority=Priority.URGENT, hashtags=["thissucks"]),
        PriorityRule(priority=Priority.HIGH, min_reach=10_000),
        PriorityRule(priority=Priority.LOW, keywords=["feature request"]),
    ]
    acme = ACME.model_copy(update={"priority_rules": rules})
    cases = {
        "@acme #thissucks": Priority.URGENT,
        "@acme feature request: dark mode": Priority.LOW,
        "@acme hello": Priority.NORMAL,
    }
    for text, expected in cases.items():
        [wait] = compute_waits([customer("1", 0, text)], acme)
        assert wait.priority is expected, text
    [influencer] = compute_waits([customer("1", 0, reach=50_000)], acme)
    assert influencer.priority is Priority.HIGH


def test_start_of_wait_uses_timezone_aware_utc() -> None:
    [wait] = compute_waits([customer("1", 0)], ACME)
    assert wait.started_at == T0 and wait.started_at.tzinfo is UTC
