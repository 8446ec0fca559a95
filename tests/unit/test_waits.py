"""The pure wait logic: one wait per (conversation, brand, customer), folded over the posts in order.

Expected values are written out by hand from the spec (the module docstring of
replyclock.logic.waits and ARCHITECTURE.md "Vocabulary"), never computed with the code under test.
"""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.logic.waits import (
    brands_in_conversation,
    compute_waits,
    effective_times,
    keep_sweeper_status,
    order_key,
    placed_conversation,
    speaker_of,
)
from replyclock.models.domain import (
    AuthorRole,
    Brand,
    BusinessCalendar,
    Clock,
    OpenInterval,
    Post,
    Priority,
    PriorityRule,
    SLAPolicy,
    SLATargets,
    Wait,
    WaitKind,
    WaitStatus,
)
from tests.support.builders import T0, at, brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme", handles={"x": ["acme", "AcmeHelp"]}, auto_reply_patterns=[r"^Thanks for reaching"])
# No handles configured: its id stands as its handle.
GLOBEX = Brand(id="globex", name="Globex")
DIRECTORY = brand_directory([ACME, GLOBEX])

Summary = dict[str, list[tuple[str, str, str | None, float | None]]]


def waits_of(posts: list[Post], who: Brand = ACME) -> dict[str, list[Wait]]:
    return compute_waits(posts, who, DIRECTORY.brand_for_handle)


def summary(posts: list[Post], who: Brand = ACME) -> Summary:
    """customer -> [(kind, start post, end post, calendar seconds)], oldest first."""
    return {
        name: [(wait.kind.value, wait.start_post_id, wait.end_post_id, wait.calendar_seconds) for wait in waits]
        for name, waits in waits_of(posts, who).items()
    }


def only_wait(posts: list[Post], who: Brand = ACME, name: str = "alice") -> Wait:
    lanes = waits_of(posts, who)
    assert list(lanes) == [name]
    [wait] = lanes[name]
    return wait


def stored_post(post_id: str, minute: float, author: str, text: str, **fields: object) -> Post:
    """A post as some source stored it, with the role (and brand) that source claimed."""
    return Post.model_validate(
        {
            "channel": "x",
            "id": post_id,
            "author": author,
            "author_role": AuthorRole.CUSTOMER,
            "created_at": at(minute),
            "text": text,
            "conversation_id": "c1",
            "mentions": tuple(word[1:] for word in text.split() if word.startswith("@")),
            **fields,
        }
    )


# --- one customer ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scenario", "posts", "expected"),
    [
        (
            "direct reply",
            [customer("1", 0), brand("2", 5, "Sorry, looking now", reply_to="1")],
            {"alice": [("first", "1", "2", 300.0)]},
        ),
        (
            "double-post before the answer: the wait starts at the first post",
            [customer("1", 0), customer("2", 3, "@acme hello??"), brand("3", 7, "On it", reply_to="2")],
            {"alice": [("first", "1", "3", 420.0)]},
        ),
        (
            "brand speaks first: the customer's reply opens the first wait",
            [
                brand("1", 0, "@alice can we help?"),
                customer("2", 2, "yes please", reply_to="1"),
                brand("3", 4, "Sending a fix", reply_to="2"),
            ],
            {"alice": [("first", "2", "3", 120.0)]},
        ),
        (
            "never answered stays open",
            [customer("1", 0)],
            {"alice": [("first", "1", None, None)]},
        ),
        (
            "a customer post not addressed to the brand opens no wait",
            [customer("1", 0, "@friend look at this")],
            {},
        ),
        (
            "a customer post before the brand's first post stays unaddressed",
            [customer("1", 0, "@friend look at this"), brand("2", 5, "Hi all")],
            {},
        ),
        (
            "a mention of a configured handle is addressed, case-insensitively",
            [customer("1", 0, "@AcmeHelp broken"), brand("2", 1, "Fixed", reply_to="1")],
            {"alice": [("first", "1", "2", 60.0)]},
        ),
        (
            "a reply to the brand's post is addressed without a mention",
            [
                brand("1", 0, "New release is out"),
                customer("2", 3, "it broke my login", reply_to="1"),
                brand("3", 9, "Looking", reply_to="2"),
            ],
            {"alice": [("first", "2", "3", 360.0)]},
        ),
        (
            "after the brand posted in the conversation, any customer post is addressed",
            [
                customer("1", 0, "@friend is it down for you?"),
                brand("2", 1, "@alice we're on it"),
                customer("3", 4, "still down here too", author="bob", reply_to="1"),
            ],
            {"bob": [("first", "3", None, None)]},
        ),
        (
            "duplicate posts count once",
            [customer("1", 0), customer("1", 0), brand("2", 5), brand("2", 5)],
            {"alice": [("first", "1", "2", 300.0)]},
        ),
        (
            "arrival order does not matter",
            [brand("2", 5, reply_to="1"), customer("1", 0)],
            {"alice": [("first", "1", "2", 300.0)]},
        ),
    ],
)
def test_waits_follow_the_conversation(scenario: str, posts: list[Post], expected: Summary) -> None:
    assert summary(posts) == expected, scenario


# --- several customers ----------------------------------------------------------------------------


def pile_on() -> list[Post]:
    """Three customers ask the brand, one minute apart."""
    return [
        customer("1", 0, "@acme help"),
        customer("2", 1, "@acme me too", author="bob"),
        customer("3", 2, "@acme same here", author="carol"),
    ]


def test_pile_on_answering_one_customer_by_reply_leaves_the_others_waiting() -> None:
    posts = [*pile_on(), brand("4", 10, "Sorry about that, checking", reply_to="2")]

    assert summary(posts) == {
        "alice": [("first", "1", None, None)],
        "bob": [("first", "2", "4", 540.0)],
        "carol": [("first", "3", None, None)],
    }


def test_a_brand_post_mentioning_two_customers_answers_both() -> None:
    posts = [*pile_on(), brand("4", 10, "@alice @carol fixed now, sorry")]

    assert summary(posts) == {
        "alice": [("first", "1", "4", 600.0)],
        "bob": [("first", "2", None, None)],
        "carol": [("first", "3", "4", 480.0)],
    }


def test_a_reply_that_also_mentions_answers_the_replied_to_and_the_mentioned() -> None:
    posts = [*pile_on(), brand("4", 10, "@carol you too: fixed", reply_to="2")]

    assert summary(posts) == {
        "alice": [("first", "1", None, None)],
        "bob": [("first", "2", "4", 540.0)],
        "carol": [("first", "3", "4", 480.0)],
    }


def test_a_brand_post_naming_no_one_answers_everyone_waiting() -> None:
    # Given alice already answered by reply, then two more customers waiting, and a bystander
    posts = [
        customer("1", 0, "@acme help"),
        customer("2", 1, "@acme me too", author="bob"),
        brand("3", 5, "On it", reply_to="1"),
        customer("4", 6, "@acme same", author="carol"),
        customer("5", 2, "@friend lol", author="dan", reply_to="99"),
        # When the brand posts to no one in particular
        brand("6", 10, "A fix is rolling out to everyone"),
    ]

    # Then every waiting customer is answered by it; alice's closed wait keeps its own answer,
    # and dan (who spoke to a friend before the brand's first post) never waited
    assert summary(posts) == {
        "alice": [("first", "1", "3", 300.0)],
        "bob": [("first", "2", "6", 540.0)],
        "carol": [("first", "4", "6", 240.0)],
    }


def test_a_brand_post_mentioning_only_brands_names_no_customer() -> None:
    posts = [*pile_on(), brand("4", 10, "@globex @AcmeHelp looking into it together")]

    assert summary(posts) == {
        "alice": [("first", "1", "4", 600.0)],
        "bob": [("first", "2", "4", 540.0)],
        "carol": [("first", "3", "4", 480.0)],
    }


def test_a_customer_follow_up_after_an_answer_opens_a_next_wait() -> None:
    posts = [
        customer("1", 0),
        brand("2", 5, "Try restarting", reply_to="1"),
        customer("3", 20, "still broken", reply_to="2"),
        brand("4", 50, "Escalated", reply_to="3"),
        customer("5", 60, "thanks, works now", reply_to="4"),
    ]

    assert summary(posts) == {
        "alice": [("first", "1", "2", 300.0), ("next", "3", "4", 1800.0), ("next", "5", None, None)],
    }


def test_first_and_next_are_counted_per_customer() -> None:
    posts = [
        customer("1", 0, "@acme help"),
        brand("2", 5, "Fixed", reply_to="1"),
        # bob's first wait comes after alice's first answer: it is still bob's first
        customer("3", 10, "@acme and me?", author="bob"),
        customer("4", 12, "@acme broken again"),
        brand("5", 20, "All fixed now"),
    ]

    lanes = waits_of(posts)

    assert {name: [wait.kind for wait in waits] for name, waits in lanes.items()} == {
        "alice": [WaitKind.FIRST, WaitKind.NEXT],
        "bob": [WaitKind.FIRST],
    }
    assert summary(posts) == {
        "alice": [("first", "1", "2", 300.0), ("next", "4", "5", 480.0)],
        "bob": [("first", "3", "5", 600.0)],
    }
    assert all(wait.customer == name for name, waits in lanes.items() for wait in waits)


# --- order --------------------------------------------------------------------------------------


def test_a_reply_clocked_before_its_parent_is_ordered_after_it() -> None:
    # Given clocks that disagree: the answer and a follow-up claim earlier times than the question
    posts = [
        customer("1", 10, "@acme help"),
        brand("2", 5, "On it", reply_to="1"),
        customer("3", 7, "still broken", reply_to="2"),
        brand("4", 8, "Escalated", reply_to="3"),
    ]

    # Then each reply takes its parent's later time, and sorts after it
    assert effective_times({post.id: post for post in posts}) == {"1": at(10), "2": at(10), "3": at(10), "4": at(10)}
    assert [placed.post.id for placed in placed_conversation(reversed(posts), DIRECTORY.brand_for_handle)] == [
        "1",
        "2",
        "3",
        "4",
    ]
    first, following = waits_of(posts)["alice"]
    assert (first.start_post_id, first.end_post_id, first.started_at, first.ended_at) == ("1", "2", at(10), at(10))
    assert (first.calendar_seconds, first.business_seconds) == (0.0, 0.0)
    assert (following.kind, following.start_post_id, following.end_post_id) == (WaitKind.NEXT, "3", "4")
    assert (following.started_at, following.calendar_seconds) == (at(10), 0.0)


def test_effective_time_is_the_latest_along_the_chain_and_ignores_missing_parents() -> None:
    posts = {
        "1": customer("1", 0, reply_to="missing"),
        "2": brand("2", 30, reply_to="1"),
        "3": customer("3", 20, reply_to="2"),
        "4": customer("4", 40, reply_to="3"),
    }

    assert effective_times(posts) == {"1": at(0), "2": at(30), "3": at(30), "4": at(40)}


def test_at_equal_times_numeric_ids_are_ordered_numerically() -> None:
    # "9" < "10" numerically, though "10" < "9" as strings
    answered = [brand("10", 0, "On it"), customer("9", 0)]
    unanswered = [customer("10", 0), brand("9", 0, "Good morning all")]

    assert summary(answered) == {"alice": [("first", "9", "10", 0.0)]}
    assert summary(unanswered) == {"alice": [("first", "10", None, None)]}
    assert sorted(["100", "10", "9", "11"], key=lambda post_id: order_key(T0, post_id)) == ["9", "10", "11", "100"]


def test_order_key_sorts_by_effective_time_before_id() -> None:
    earlier_long_id = order_key(at(0), "100")
    later_short_id = order_key(at(1), "9")
    same_instant_other_zone = order_key(at(0).astimezone(BusinessCalendar(timezone="Asia/Tokyo").zone), "100")

    assert earlier_long_id < later_short_id
    assert same_instant_other_zone == earlier_long_id


# --- who speaks ---------------------------------------------------------------------------------


def test_a_configured_brand_handle_is_the_brand_whatever_the_source_stored() -> None:
    # Given a customer asking both brands, and acme's answer polled by globex's source as a customer post
    posts = [
        customer("1", 0, "@acme @globex which of you broke my order?"),
        stored_post("2", 5, "AcmeHelp", "We did, sorry: refund on its way", in_reply_to="1"),
    ]

    # Then it is acme's answer, and no customer's post
    assert speaker_of(posts[1], DIRECTORY.brand_for_handle) == "acme"
    assert summary(posts, ACME) == {"alice": [("first", "1", "2", 300.0)]}
    assert summary(posts, GLOBEX) == {"alice": [("first", "1", None, None)]}


@pytest.mark.parametrize(
    ("scenario", "post", "speaker"),
    [
        ("a configured handle stored as a customer", stored_post("1", 0, "@AcmeHelp", "hi"), "acme"),
        (
            "a configured handle claimed by another brand's source",
            stored_post("1", 0, "acmehelp", "hi", author_role=AuthorRole.BRAND, brand_id="globex"),
            "acme",
        ),
        (
            "an author no brand owns, claimed by a source",
            stored_post("1", 0, "agent_jo", "hi", author_role=AuthorRole.BRAND, brand_id="acme"),
            "acme",
        ),
        ("the id of a brand without handles", stored_post("1", 0, "Globex", "hi"), "globex"),
        ("a customer", stored_post("1", 0, "alice", "hi"), None),
    ],
)
def test_speaker_of_a_post(scenario: str, post: Post, speaker: str | None) -> None:
    assert speaker_of(post, DIRECTORY.brand_for_handle) == speaker, scenario


def test_an_agent_handle_claimed_by_the_brands_source_answers() -> None:
    posts = [
        customer("1", 0),
        stored_post("2", 3, "agent_jo", "DM sent", author_role=AuthorRole.BRAND, brand_id="acme", in_reply_to="1"),
    ]
    assert summary(posts) == {"alice": [("first", "1", "2", 180.0)]}


# --- auto-replies and several brands ------------------------------------------------------------


def test_auto_reply_answers_no_one() -> None:
    # Given an auto-reply that even names the customer, then a human answer
    posts = [
        customer("1", 0),
        brand("2", 1, "Thanks for reaching out @alice we'll reply soon", reply_to="1"),
        brand("3", 30, "Refund issued", reply_to="1"),
    ]

    assert summary(posts) == {"alice": [("first", "1", "3", 1800.0)]}


@pytest.mark.parametrize(
    "follow_up",
    [
        customer("2", 1, "ok", reply_to="1"),
        customer("2", 1, "anyone there?"),
    ],
    ids=["reply to it", "after it"],
)
def test_an_auto_reply_counts_as_the_brand_having_posted(follow_up: Post) -> None:
    posts = [brand("1", 0, "Thanks for reaching out"), follow_up, brand("3", 2, "Hi, how can we help?")]

    assert summary(posts) == {"alice": [("first", "2", "3", 60.0)]}


def test_two_brands_in_one_thread_are_measured_separately() -> None:
    posts = [
        customer("1", 0, "@acme @globex which of you broke my order?"),
        brand("2", 10, "Not us", brand_id="globex"),
        brand("3", 45, "Us, sorry", brand_id="acme", reply_to="1"),
    ]

    assert summary(posts, ACME) == {"alice": [("first", "1", "3", 2700.0)]}
    assert summary(posts, GLOBEX) == {"alice": [("first", "1", "2", 600.0)]}
    placed = placed_conversation(posts, DIRECTORY.brand_for_handle)
    assert brands_in_conversation(placed, DIRECTORY.brand_for_handle) == {"acme", "globex"}


def test_brands_in_conversation_counts_speakers_and_mentions_on_the_channel() -> None:
    mentioned = placed_conversation([customer("1", 0, "@AcmeHelp hi")], DIRECTORY.brand_for_handle)
    spoke = placed_conversation([brand("1", 0, "hello", brand_id="globex")], DIRECTORY.brand_for_handle)
    other_channel = placed_conversation(
        [customer("1", 0, "@acmehelp hi", channel="mastodon")], DIRECTORY.brand_for_handle
    )
    nobody = placed_conversation([customer("1", 0, "@friend hi")], DIRECTORY.brand_for_handle)

    assert brands_in_conversation(mentioned, DIRECTORY.brand_for_handle) == {"acme"}
    assert brands_in_conversation(spoke, DIRECTORY.brand_for_handle) == {"globex"}
    assert brands_in_conversation(other_channel, DIRECTORY.brand_for_handle) == set()
    assert brands_in_conversation(nobody, DIRECTORY.brand_for_handle) == set()


def test_another_brands_answer_does_not_end_the_wait() -> None:
    posts = [customer("1", 0, "@acme help"), brand("2", 5, "@alice not us", brand_id="globex", reply_to="1")]

    assert summary(posts, ACME) == {"alice": [("first", "1", None, None)]}


# --- targets, policies, priorities ----------------------------------------------------------------


def test_closed_wait_status_compares_latency_with_the_target_of_its_priority() -> None:
    policy = SLAPolicy(targets=SLATargets(urgent=600, high=3600, normal=3600, low=3600))
    acme = ACME.model_copy(update={"sla_policies": [policy]})

    met = only_wait([customer("1", 0, "@acme site is down #thissucks"), brand("2", 10)], acme)
    breached = only_wait([customer("1", 0, "@acme outage again"), brand("2", 11)], acme)

    assert (met.priority, met.target_seconds, met.calendar_seconds, met.status) == (
        Priority.URGENT,
        600,
        600.0,
        WaitStatus.MET,
    )
    assert (breached.priority, breached.calendar_seconds, breached.status) == (
        Priority.URGENT,
        660.0,
        WaitStatus.BREACHED,
    )


def test_open_wait_is_pending_with_due_and_at_risk_times() -> None:
    policy = SLAPolicy(targets=SLATargets(normal=3600), at_risk_fraction=0.75)

    wait = only_wait([customer("1", 0)], ACME.model_copy(update={"sla_policies": [policy]}))

    assert (wait.status, wait.due_at, wait.at_risk_at) == (WaitStatus.PENDING, at(60), at(45))
    assert (wait.end_post_id, wait.ended_at, wait.calendar_seconds, wait.business_seconds) == (None, None, None, None)


def test_wait_records_the_policy_in_force_when_it_started() -> None:
    # Given a policy change at minute 30
    old = SLAPolicy(version=1, targets=SLATargets(normal=3600))
    new = SLAPolicy(version=2, effective_from=at(30), targets=SLATargets(normal=600))
    acme = ACME.model_copy(update={"sla_policies": [old, new]})
    posts = [customer("1", 0), brand("2", 20), customer("3", 40, "again"), brand("4", 55)]

    first, following = waits_of(posts, acme)["alice"]

    # Then the earlier wait keeps version 1, the later one uses version 2
    assert (first.policy_version, first.target_seconds, first.status) == (1, 3600, WaitStatus.MET)
    assert (following.policy_version, following.target_seconds, following.status) == (2, 600, WaitStatus.BREACHED)


def test_the_policy_is_chosen_at_the_effective_start() -> None:
    # A reply clocked before the policy change, to a question after it, starts after it
    old = SLAPolicy(version=1, targets=SLATargets(normal=3600))
    new = SLAPolicy(version=2, effective_from=at(30), targets=SLATargets(normal=600))
    acme = ACME.model_copy(update={"sla_policies": [old, new]})
    posts = [brand("1", 40, "How can we help?"), customer("2", 10, "my order", reply_to="1")]

    wait = only_wait(posts, acme)

    assert (wait.started_at, wait.policy_version, wait.due_at) == (at(40), 2, at(50))


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
    end = answered.replace(tzinfo=london)
    posts = [customer("1", 0, start=start), brand("2", (end - start) / timedelta(minutes=1), start=start)]

    wait = only_wait(posts, BUSINESS_ACME)

    assert wait.business_seconds == pytest.approx(business_seconds), scenario
    assert wait.calendar_seconds == (end.astimezone(UTC) - start.astimezone(UTC)).total_seconds(), scenario
    assert wait.clock is Clock.BUSINESS


def test_friday_evening_wait_on_a_business_clock_is_due_monday_morning() -> None:
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=LONDON_9_TO_5.zone)

    wait = only_wait([customer("1", 0, start=friday_evening)], BUSINESS_ACME)

    assert wait.due_at == datetime(2026, 11, 23, 9, 30, tzinfo=LONDON_9_TO_5.zone).astimezone(UTC)


def test_a_late_answer_on_a_business_clock_breaches_exactly_after_due() -> None:
    friday_evening = datetime(2026, 11, 20, 17, 55, tzinfo=LONDON_9_TO_5.zone)
    # Monday 09:30 is 3 days minus 8 h 25 min after Friday 17:55
    on_time = [customer("1", 0, start=friday_evening), brand("2", 3 * 24 * 60 - 8 * 60 - 25, start=friday_evening)]
    late = [customer("1", 0, start=friday_evening), brand("2", 3 * 24 * 60 - 8 * 60 - 24, start=friday_evening)]

    assert only_wait(on_time, BUSINESS_ACME).status is WaitStatus.MET
    assert only_wait(late, BUSINESS_ACME).status is WaitStatus.BREACHED


def test_first_wait_is_first_even_when_it_comes_after_a_brand_post() -> None:
    wait = only_wait([brand("1", 0), customer("2", 1, "thanks", reply_to="1")])
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
        assert only_wait([customer("1", 0, text)], acme).priority is expected, text
    assert only_wait([customer("1", 0, reach=50_000)], acme).priority is Priority.HIGH
    # A double-post does not re-classify the wait it joins
    assert only_wait([customer("1", 0, "@acme hello"), customer("2", 1, "@acme #thissucks")], acme).priority is (
        Priority.NORMAL
    )


def test_start_of_wait_uses_timezone_aware_utc() -> None:
    wait = only_wait([customer("1", 0)])
    assert wait.started_at == T0 and wait.started_at.tzinfo is UTC


def test_a_wait_names_its_conversation_brand_channel_and_customer() -> None:
    wait = only_wait([customer("1", 0, author="@Alice", conversation="c7")], name="alice")

    assert (wait.brand_id, wait.channel, wait.conversation_id, wait.customer) == ("acme", "x", "c7", "alice")


# --- the sweeper's marks ------------------------------------------------------------------------


def latest(posts: list[Post], who: Brand = ACME) -> Wait:
    return waits_of(posts, who)["alice"][-1]


@pytest.mark.parametrize("mark", [WaitStatus.AT_RISK, WaitStatus.BREACHED])
def test_sweeper_marks_survive_recomputation_of_the_same_open_wait(mark: WaitStatus) -> None:
    swept = latest([customer("1", 0)]).model_copy(update={"status": mark})
    # When a double-post arrives and the wait is recomputed
    recomputed = latest([customer("1", 0), customer("2", 5, "@acme hello?")])

    kept = keep_sweeper_status(recomputed, swept)

    assert kept == recomputed.model_copy(update={"status": mark})


def test_sweeper_marks_do_not_outlive_the_answer() -> None:
    swept = latest([customer("1", 0)]).model_copy(update={"status": WaitStatus.AT_RISK})
    answered = latest([customer("1", 0), brand("2", 5)])

    assert keep_sweeper_status(answered, swept) == answered
    assert answered.status is WaitStatus.MET


def test_sweeper_marks_do_not_pass_to_another_wait() -> None:
    swept = latest([customer("1", 0)]).model_copy(update={"status": WaitStatus.BREACHED})
    following = latest([customer("1", 0), brand("2", 5), customer("3", 10, "again")])

    assert following.start_post_id == "3"
    assert keep_sweeper_status(following, swept) == following


def test_sweeper_marks_do_not_survive_a_changed_due_time() -> None:
    swept = latest([customer("1", 0)]).model_copy(update={"status": WaitStatus.AT_RISK})
    stricter = ACME.model_copy(update={"sla_policies": [SLAPolicy(targets=SLATargets(normal=600))]})
    recomputed = latest([customer("1", 0)], stricter)

    assert recomputed.due_at == at(10)
    assert keep_sweeper_status(recomputed, swept) == recomputed


def test_keep_sweeper_status_without_one_side() -> None:
    wait = latest([customer("1", 0)])
    swept = wait.model_copy(update={"status": WaitStatus.BREACHED})

    assert keep_sweeper_status(None, swept) is None
    assert keep_sweeper_status(wait, None) == wait
    assert keep_sweeper_status(wait, wait) == wait


# --- properties ---------------------------------------------------------------------------------

AUTHORS = {
    "alice": (AuthorRole.CUSTOMER, None),
    "bob": (AuthorRole.CUSTOMER, None),
    "carol": (AuthorRole.CUSTOMER, None),
    "acmehelp": (AuthorRole.BRAND, "acme"),
    # acme's handle as another source stored it
    "acme": (AuthorRole.CUSTOMER, None),
    "globex": (AuthorRole.BRAND, "globex"),
}
HANDLES = ["acme", "acmehelp", "globex", "alice", "bob", "carol", "friend"]


@st.composite
def conversations(draw: st.DrawFn) -> list[Post]:
    """Acyclic threads: each post may reply to an earlier-drawn one (or a missing one), at any time."""
    ids = draw(st.lists(st.integers(1, 150), min_size=1, max_size=9, unique=True))
    posts: list[Post] = []
    for post_id in ids:
        author = draw(st.sampled_from(sorted(AUTHORS)))
        role, brand_id = AUTHORS[author]
        mentions = draw(st.lists(st.sampled_from(HANDLES), max_size=3, unique=True))
        auto = role is AuthorRole.BRAND and draw(st.booleans())
        text = ("Thanks for reaching out " if auto else "") + " ".join(f"@{handle}" for handle in mentions)
        parent = draw(st.none() | st.sampled_from([post.id for post in posts] + ["999"]))
        posts.append(
            Post(
                channel="x",
                id=str(post_id),
                author=author,
                author_role=role,
                brand_id=brand_id,
                created_at=at(draw(st.integers(0, 20))),
                text=text,
                in_reply_to=parent,
                conversation_id="c1",
                mentions=tuple(mentions),
            )
        )
    return posts


@settings(max_examples=300, deadline=None)
@given(posts=conversations(), data=st.data())
def test_waits_do_not_depend_on_input_order_or_duplicates(posts: list[Post], data: st.DataObject) -> None:
    repeated = data.draw(st.lists(st.sampled_from(posts), max_size=5))
    shuffled = data.draw(st.permutations([*posts, *repeated]))

    for who in (ACME, GLOBEX):
        assert waits_of(shuffled, who) == waits_of(posts, who)


@settings(max_examples=300, deadline=None)
@given(posts=conversations())
def test_waits_are_well_formed(posts: list[Post]) -> None:
    by_id = {post.id: post for post in posts}
    for who in (ACME, GLOBEX):
        for name, waits in waits_of(posts, who).items():
            assert waits, name
            assert [wait.kind for wait in waits] == [WaitKind.FIRST] + [WaitKind.NEXT] * (len(waits) - 1)
            # Only the latest wait of a customer may be open, and waits follow one another
            assert all(not wait.is_open for wait in waits[:-1])
            for earlier, later in zip(waits, waits[1:], strict=False):
                assert earlier.ended_at is not None and earlier.ended_at <= later.started_at
            for wait in waits:
                assert (wait.customer, wait.brand_id) == (name, who.id)
                assert speaker_of(by_id[wait.start_post_id], DIRECTORY.brand_for_handle) is None
                if not wait.is_open:
                    assert wait.end_post_id is not None and wait.ended_at is not None
                    assert speaker_of(by_id[wait.end_post_id], DIRECTORY.brand_for_handle) == who.id
                    assert wait.calendar_seconds == (wait.ended_at - wait.started_at).total_seconds() >= 0
                    assert wait.business_seconds is not None and wait.business_seconds >= 0


# --- known gaps (strict: they fail loudly once fixed, then drop the marker) ---------------------


def test_a_reply_cycle_does_not_make_the_result_depend_on_input_order() -> None:
    question = customer("1", 0, reply_to="2")
    answer = brand("2", 5, "On it", reply_to="1")

    assert summary([question, answer]) == summary([answer, question])


def test_order_key_sorts_years_before_1000() -> None:
    assert order_key(datetime(999, 1, 1, tzinfo=UTC), "1") < order_key(datetime(2000, 1, 1, tzinfo=UTC), "1")
