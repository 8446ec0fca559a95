"""Hand-offs ('take it to DM') and exposure on the pure wait logic, bucket counters and summary figures.

Expected values are written out by hand from the spec (issue 16, items 3 and 2), never computed with the code
under test.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest

from replyclock.dal.rollups import pack, unpack
from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketKey, BucketTotals, totals_by_bucket
from replyclock.logic.patterns import compile_matcher
from replyclock.logic.waits import compute_waits, exposure_of
from replyclock.models.domain import DEFAULT_HANDOFF_PATTERNS, Brand, Clock, Engagement, Post, Wait
from tests.support.builders import brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme", auto_reply_patterns=[r"^Thanks for reaching"])
DIRECTORY = brand_directory([ACME])


def waits_of(posts: list[Post], who: Brand = ACME) -> dict[str, list[Wait]]:
    return compute_waits(posts, who, brand_directory([who]).brand_for_handle)


def flags(posts: list[Post], who: Brand = ACME) -> dict[str, list[tuple[str, str | None, bool, bool]]]:
    """customer -> [(start post, end post, handed_off, after_handoff)], oldest first."""
    return {
        name: [(wait.start_post_id, wait.end_post_id, wait.handed_off, wait.after_handoff) for wait in waits]
        for name, waits in waits_of(posts, who).items()
    }


@pytest.mark.parametrize(
    "text",
    [
        "@alice DM us your order number",
        "@alice Please send us a DM and we'll look",
        "@alice Pls, DM your confirmation number",
        "@alice could you direct message us?",
        "@alice send a private message with your account",
        "@alice check your DMs",
        "@alice we've replied to your DM",
        "@alice can you reach us via PM?",
        "@alice PM us please",
        "@alice here: https://twitter.com/messages/compose?recipient_id=123",
        "@alice https://m.me/acme",
    ],
)
def test_the_default_patterns_take_the_usual_hand_offs(text: str) -> None:
    matches, refused = compile_matcher(DEFAULT_HANDOFF_PATTERNS)

    assert refused == ()
    assert matches(text)


@pytest.mark.parametrize(
    "text",
    [
        "@alice fixed now, sorry ^DM",  # an agent's initials signing the reply
        "@alice thanks! -DM",
        "@alice the courier delivers until 8 PM",
        "@alice Dmitri from our team will call",
        "@alice we're on it",
    ],
)
def test_the_default_patterns_leave_other_answers_alone(text: str) -> None:
    matches, _ = compile_matcher(DEFAULT_HANDOFF_PATTERNS)

    assert not matches(text)


def test_a_hand_off_answers_the_wait_and_flags_it() -> None:
    posts = [customer("1", 0), brand("2", 5, "@alice please DM us your order number", reply_to="1")]

    [wait] = waits_of(posts)["alice"]

    assert (wait.end_post_id, wait.calendar_seconds, wait.handed_off, wait.after_handoff) == ("2", 300.0, True, False)


def test_a_public_post_after_a_hand_off_opens_a_next_wait_flagged_after_handoff() -> None:
    posts = [
        customer("1", 0),
        brand("2", 5, "@alice DM us", reply_to="1"),
        customer("3", 60, "@acme still waiting for a reply to my DM", reply_to="2"),
        brand("4", 70, "@alice sorted, sorry", reply_to="3"),
        customer("5", 80, "@acme thanks", reply_to="4"),
    ]

    assert flags(posts) == {
        "alice": [("1", "2", True, False), ("3", "4", False, True), ("5", None, False, False)],
    }


def test_a_follow_up_after_an_ordinary_answer_is_not_after_handoff() -> None:
    posts = [customer("1", 0), brand("2", 5, reply_to="1"), customer("3", 60, "@acme again", reply_to="2")]

    assert flags(posts) == {"alice": [("1", "2", False, False), ("3", None, False, False)]}


def test_a_hand_off_naming_one_customer_flags_only_their_wait() -> None:
    posts = [
        customer("1", 0),
        customer("2", 1, "@acme me too", author="bob"),
        brand("3", 5, "@alice DM us", reply_to="1"),
        brand("4", 6, "@bob fixed", reply_to="2"),
    ]

    assert flags(posts) == {"alice": [("1", "3", True, False)], "bob": [("2", "4", False, False)]}


def test_a_hand_off_naming_no_one_flags_every_wait_it_answers() -> None:
    posts = [
        customer("1", 0),
        customer("2", 1, "@acme me too", author="bob"),
        brand("3", 5, "Everyone affected: please send us a DM"),
    ]

    assert flags(posts) == {"alice": [("1", "3", True, False)], "bob": [("2", "3", True, False)]}


def test_an_auto_reply_that_says_dm_answers_no_one() -> None:
    posts = [customer("1", 0), brand("2", 1, "Thanks for reaching out! DM us", reply_to="1")]

    assert flags(posts) == {"alice": [("1", None, False, False)]}


def test_hand_off_patterns_are_per_brand() -> None:
    posts = [customer("1", 0), brand("2", 5, "@alice DM us", reply_to="1")]
    no_patterns = ACME.model_copy(update={"handoff_patterns": []})
    own = ACME.model_copy(update={"handoff_patterns": [r"\bwhatsapp\b"]})

    assert flags(posts, no_patterns) == {"alice": [("1", "2", False, False)]}
    assert flags(posts, own) == {"alice": [("1", "2", False, False)]}
    assert flags([posts[0], brand("2", 5, "@alice ping us on WhatsApp", reply_to="1")], own) == {
        "alice": [("1", "2", True, False)]
    }


def test_hand_offs_are_counted_per_bucket() -> None:
    posts = [
        customer("1", 0),
        brand("2", 5, "@alice DM us", reply_to="1"),
        customer("3", 60, "@acme still waiting", reply_to="2"),
        customer("4", 0, "@acme hello", author="bob", conversation="c2"),
        brand("5", 5, "@bob done", reply_to="4", conversation="c2"),
    ]
    every_wait = [
        wait
        for conversation in ("c1", "c2")
        for waits in waits_of([post for post in posts if post.conversation_id == conversation]).values()
        for wait in waits
    ]

    buckets = totals_by_bucket(every_wait)
    figures = metrics.summarize(buckets.items(), Clock.CALENDAR)

    assert (figures.mentions, figures.responded, figures.handed_off) == (2, 2, 1)
    assert figures.handoff_rate == pytest.approx(0.5)
    assert (figures.next_waits, figures.after_handoff) == (1, 1)


def test_no_responses_means_no_handoff_rate() -> None:
    figures = metrics.summarize([], Clock.CALENDAR)

    assert (figures.handed_off, figures.handoff_rate, figures.after_handoff) == (0, None, 0)


def test_a_roll_up_packed_before_the_hand_off_counters_still_reads() -> None:
    # Given a roll-up item packed when there were six counters (waits, responded, met, breached, at_risk, open)
    old = json.dumps([[3, 2, 1, 1, 0, 1], [0, 0], [0, 0]])

    totals = unpack(old)

    assert totals.counters == Counter({"waits": 3, "responded": 2, "met": 1, "breached": 1, "open": 1})
    fresh = BucketTotals(counters=Counter({"waits": 2, "responded": 2, "handed_off": 1, "after_handoff": 1}))
    assert unpack(pack(fresh)).counters == fresh.counters


def test_a_wait_exposes_its_authors_reach_and_its_reposts() -> None:
    reach_only = customer("1", 0, reach=5_000)
    both = reach_only.model_copy(update={"engagement": Engagement(reposts=40, likes=7)})
    reposts_only = customer("1", 0).model_copy(update={"engagement": Engagement(reposts=3)})
    neither = customer("1", 0).model_copy(update={"engagement": Engagement(likes=9)})

    assert [exposure_of(post) for post in (reach_only, both, reposts_only, neither)] == [5_000, 5_040, 3, None]
    [wait] = waits_of([both])["alice"]
    assert wait.exposure == 5_040


def test_bucket_keys_keep_hand_offs_apart_from_their_kind() -> None:
    posts = [customer("1", 0), brand("2", 5, "@alice DM us", reply_to="1"), customer("3", 60, "@acme hi", reply_to="2")]
    buckets = totals_by_bucket(wait for waits in waits_of(posts).values() for wait in waits)

    by_kind = {key.kind.value: totals.counters for key, totals in buckets.items() if isinstance(key, BucketKey)}
    assert by_kind["first"]["handed_off"] == 1 and by_kind["first"]["after_handoff"] == 0
    assert by_kind["next"]["after_handoff"] == 1 and by_kind["next"]["handed_off"] == 0
