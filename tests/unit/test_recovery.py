"""Recovery (issue 16, item 4) on the pure logic: scores, response bands, the fold, bucket counters and figures.

Expected values are written out by hand from the spec, or computed by an oracle in this file that walks the
conversation on its own; never with the code under test.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from replyclock.dal.rollups import pack, unpack
from replyclock.logic import metrics
from replyclock.logic.aggregation import COUNTER_NAMES, BucketKey, BucketTotals, totals_by_bucket
from replyclock.logic.recovery import RECOVERY_COUNTER_NAMES, ResponseBand, band_of
from replyclock.logic.sentiment import MAX_SCORED_CHARS, compound_score, scored
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, Post, Priority, Wait, WaitKind
from tests.support.builders import brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme")
REPO_ROOT = Path(__file__).resolve().parents[2]
NEGATIVE, NEUTRAL, POSITIVE = -0.6, 0.0, 0.5


def feeling(post: Post, score: float | None) -> Post:
    """The post as the store would keep it, with this score (the fold reads the stored score, never the text)."""
    return post.model_copy(update={"sentiment": score})


def waits_of(posts: list[Post]) -> list[Wait]:
    lanes = compute_waits(posts, ACME, brand_directory([ACME]).brand_for_handle)
    return [wait for waits in lanes.values() for wait in waits]


def recovery_counters(posts: list[Post]) -> dict[str, int]:
    """The non-zero recovery counters of every bucket the posts' waits make, summed."""
    summed: Counter[str] = Counter()
    for totals in totals_by_bucket(waits_of(posts)).values():
        summed.update(totals.counters)
    return {name: summed[name] for name in RECOVERY_COUNTER_NAMES if summed[name]}


# --- scores ------------------------------------------------------------------------------------------


def test_a_complaint_scores_negative_and_thanks_positive() -> None:
    assert compound_score("@acme my order is late AGAIN, worst service ever 😡") <= -0.05
    assert compound_score("@acme thanks, that fixed it! 🙏") >= 0.05
    assert compound_score("@acme order 12345") == 0.0
    assert compound_score("   ") == 0.0


def test_a_score_has_three_decimals_so_it_reads_back_from_the_store_unchanged() -> None:
    score = compound_score("@acme this is terrible, I want a refund")

    assert score == round(score, 3)
    assert -1.0 <= score <= 1.0


def test_only_the_opening_characters_are_scored() -> None:
    # VADER is quadratic in a text's words: a 40 kB hostile post is scored on its opening only.
    opening = ("this is awful " * 200)[:MAX_SCORED_CHARS]
    assert len(opening) == MAX_SCORED_CHARS

    assert compound_score(opening + " wonderful, brilliant, thank you" * 500) == compound_score(opening)


def test_scoring_replaces_a_score_the_post_came_with() -> None:
    forged = customer("1", 0, "@acme this is the worst, I hate it").model_copy(update={"sentiment": 1.0})

    assert scored(forged).sentiment == compound_score(forged.text) < 0


def test_importing_the_store_and_the_fold_does_not_load_the_lexicon() -> None:
    # Cold start: handlers that never score (api, sweep, aggregate, measure) must not pay for VADER's lexicon.
    probe = (
        "import json, sys\n"
        "import replyclock.dal.posts, replyclock.logic.aggregation, replyclock.services.measuring\n"
        "before = 'vaderSentiment' in sys.modules\n"
        "from replyclock.logic.sentiment import compound_score\n"
        "compound_score('awful')\n"
        "print(json.dumps([before, 'vaderSentiment' in sys.modules]))"
    )
    completed = subprocess.run(
        [sys.executable, "-c", probe],
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT / "layers" / "common")},
        capture_output=True,
        text=True,
        check=True,
    )

    assert json.loads(completed.stdout.splitlines()[-1]) == [False, True]


# --- response bands ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("seconds", "band"),
    [
        (0, ResponseBand.UNDER_15_MIN),
        (899.999, ResponseBand.UNDER_15_MIN),
        (900, ResponseBand.FROM_15_TO_60_MIN),
        (3599.999, ResponseBand.FROM_15_TO_60_MIN),
        (3600, ResponseBand.FROM_1_TO_4_H),
        (14_399.999, ResponseBand.FROM_1_TO_4_H),
        (14_400, ResponseBand.OVER_4_H),
        (30 * 86_400, ResponseBand.OVER_4_H),
    ],
)
def test_each_band_includes_its_lower_bound(seconds: float, band: ResponseBand) -> None:
    assert band_of(seconds) is band


# --- the fold ----------------------------------------------------------------------------------------


def test_an_unhappy_customer_who_answers_the_answer_happily_is_recovered() -> None:
    posts = [
        feeling(customer("1", 0, "@acme my parcel is lost"), NEGATIVE),
        feeling(brand("2", 10, "@alice sorry! a new one ships today"), POSITIVE),
        feeling(customer("3", 12, "@acme thank you!"), POSITIVE),
    ]

    first, _ = waits_of(posts)

    assert (first.sentiment_before, first.sentiment_after) == (NEGATIVE, POSITIVE)
    assert recovery_counters(posts) == {"negative_under_15m": 1, "followed_up_under_15m": 1, "recovered_under_15m": 1}


def test_a_customer_still_negative_after_the_answer_is_followed_up_but_not_recovered() -> None:
    posts = [
        feeling(customer("1", 0, "@acme my parcel is lost"), NEGATIVE),
        feeling(brand("2", 30, "@alice we are looking into it"), NEUTRAL),
        feeling(customer("3", 40, "@acme useless"), NEGATIVE),
    ]

    assert recovery_counters(posts) == {"negative_15m_to_1h": 1, "followed_up_15m_to_1h": 1}


def test_a_customer_who_never_posts_again_is_answered_without_follow_up() -> None:
    posts = [
        feeling(customer("1", 0, "@acme my parcel is lost"), NEGATIVE),
        feeling(brand("2", 5 * 60, "@alice found it"), NEUTRAL),
    ]

    (wait,) = waits_of(posts)

    assert wait.sentiment_after is None
    assert recovery_counters(posts) == {"negative_over_4h": 1}


def test_a_neutral_follow_up_counts_as_recovered() -> None:
    posts = [
        feeling(customer("1", 0), NEGATIVE),
        feeling(brand("2", 90), NEUTRAL),
        feeling(customer("3", 91, "@acme order 123"), NEUTRAL),
    ]

    assert recovery_counters(posts)["recovered_1h_to_4h"] == 1


def test_the_last_post_before_the_answer_decides_where_the_customer_started() -> None:
    calmed_down = [
        feeling(customer("1", 0), NEGATIVE),
        feeling(customer("2", 1), NEUTRAL),
        feeling(brand("3", 5), NEUTRAL),
        feeling(customer("4", 6), POSITIVE),
    ]
    got_angry = [
        feeling(customer("1", 0), NEUTRAL),
        feeling(customer("2", 1), NEGATIVE),
        feeling(brand("3", 5), NEUTRAL),
        feeling(customer("4", 6), POSITIVE),
    ]

    assert recovery_counters(calmed_down) == {}
    assert recovery_counters(got_angry) == {
        "negative_under_15m": 1,
        "followed_up_under_15m": 1,
        "recovered_under_15m": 1,
    }


def test_only_the_next_post_after_the_answer_counts() -> None:
    posts = [
        feeling(customer("1", 0), NEGATIVE),
        feeling(brand("2", 5), NEUTRAL),
        feeling(customer("3", 6), POSITIVE),
        feeling(customer("4", 7), NEGATIVE),
    ]

    first, second = waits_of(posts)

    assert first.sentiment_after == POSITIVE
    # The second wait (opened by post 3, its last post 4 negative) is unanswered: it counts nothing yet.
    assert (second.is_open, second.sentiment_before) == (True, NEGATIVE)
    assert recovery_counters(posts) == {"negative_under_15m": 1, "followed_up_under_15m": 1, "recovered_under_15m": 1}


def test_an_unanswered_negative_wait_counts_nothing() -> None:
    assert recovery_counters([feeling(customer("1", 0), NEGATIVE)]) == {}


def test_posts_stored_before_scores_were_kept_count_nothing() -> None:
    posts = [customer("1", 0, "@acme awful, just awful"), brand("2", 5), customer("3", 6, "@acme thanks!")]

    assert all(post.sentiment is None for post in posts)
    assert recovery_counters(posts) == {}


def test_a_negative_next_wait_that_is_answered_counts_in_its_own_band() -> None:
    posts = [
        feeling(customer("1", 0), NEGATIVE),
        feeling(brand("2", 5), NEUTRAL),
        feeling(customer("3", 6), NEGATIVE),
        feeling(brand("4", 6 + 120), NEUTRAL),
        feeling(customer("5", 6 + 121), POSITIVE),
    ]

    assert recovery_counters(posts) == {
        "negative_under_15m": 1,
        "followed_up_under_15m": 1,
        "negative_1h_to_4h": 1,
        "followed_up_1h_to_4h": 1,
        "recovered_1h_to_4h": 1,
    }


# An event of a one-customer conversation: the customer posting with a score, or the brand answering by name.
Event = tuple[str, float]
events = st.lists(
    st.one_of(
        st.tuples(st.just("customer"), st.sampled_from([NEGATIVE, -0.05, -0.049, NEUTRAL, POSITIVE])),
        st.tuples(st.just("brand"), st.just(0.0)),
    ),
    min_size=1,
    max_size=12,
)
gaps = st.lists(st.sampled_from([1, 14, 15, 59, 60, 239, 240, 600]), min_size=12, max_size=12)


def posts_of(conversation: list[Event], minutes_between: list[int]) -> list[Post]:
    posts, minute = [], 0
    for number, ((who, score), gap) in enumerate(zip(conversation, minutes_between, strict=False), start=1):
        minute += gap
        post = customer(str(number), minute, "@acme hi") if who == "customer" else brand(str(number), minute)
        posts.append(feeling(post, score))
    return posts


def oracle(conversation: list[Event], minutes_between: list[int]) -> dict[str, int]:
    """The recovery counters, from a walk over the conversation that knows nothing of lanes or buckets."""
    answered: list[dict[str, float | None]] = []  # before, after, seconds
    waiting_since: float | None = None
    last: float = 0.0
    minute = 0
    for (who, score), gap in zip(conversation, minutes_between, strict=False):
        minute += gap
        if who == "customer":
            if waiting_since is None:
                if answered and answered[-1]["after"] is None:
                    answered[-1]["after"] = score
                waiting_since = minute
            last = score
        elif waiting_since is not None:
            answered.append({"before": last, "after": None, "seconds": (minute - waiting_since) * 60.0})
            waiting_since = None
    counted: Counter[str] = Counter()
    for wait in answered:
        if wait["before"] is None or wait["before"] > -0.05:
            continue
        seconds = wait["seconds"] or 0.0
        band = "under_15m" if seconds < 900 else "15m_to_1h" if seconds < 3600 else "1h_to_4h"
        band = band if seconds < 14_400 else "over_4h"
        counted[f"negative_{band}"] += 1
        if wait["after"] is not None:
            counted[f"followed_up_{band}"] += 1
            if wait["after"] > -0.05:
                counted[f"recovered_{band}"] += 1
    return dict(counted)


@settings(max_examples=150, deadline=None)
@given(conversation=events, minutes_between=gaps, seed=st.integers(0, 2**16))
def test_recovery_is_a_function_of_the_posts_whatever_their_order_or_repeats(
    conversation: list[Event], minutes_between: list[int], seed: int
) -> None:
    posts = posts_of(conversation, minutes_between)
    delivered = posts + random.Random(seed).sample(posts, k=len(posts) // 2)
    random.Random(seed).shuffle(delivered)

    assert waits_of(delivered) == waits_of(posts)
    assert recovery_counters(delivered) == oracle(conversation, minutes_between)


# --- buckets, roll-ups and figures -------------------------------------------------------------------


def test_recovery_counters_come_after_every_older_counter() -> None:
    # Packed roll-ups list counters in COUNTER_NAMES' order: new ones go at the end.
    assert COUNTER_NAMES[:8] == (
        "waits",
        "responded",
        "met",
        "breached",
        "at_risk",
        "open",
        "handed_off",
        "after_handoff",
    )
    assert COUNTER_NAMES[8:] == RECOVERY_COUNTER_NAMES
    assert len(RECOVERY_COUNTER_NAMES) == 12


def test_a_roll_up_packed_before_recovery_reads_its_counters_as_zero() -> None:
    old = json.dumps([[5, 4, 3, 1, 0, 1, 2, 0], [0, 0, 0, []], [0, 0, 0, []]])

    totals = unpack(old)

    assert totals.counters["responded"] == 4
    assert all(totals.counters[name] == 0 for name in RECOVERY_COUNTER_NAMES)


def test_recovery_counters_survive_a_packed_roll_up() -> None:
    totals = BucketTotals(counters=Counter({"waits": 3, "negative_over_4h": 2, "recovered_over_4h": 1}))

    assert unpack(pack(totals)).counters == totals.counters


def test_figures_sum_first_and_next_waits_and_rate_only_the_followed_up() -> None:
    first = BucketKey("acme", "2026-11-18T10", WaitKind.FIRST, "x", Priority.NORMAL)
    later = BucketKey("acme", "2026-11-18T11", WaitKind.NEXT, "x", Priority.NORMAL)
    buckets = [
        (first, BucketTotals(counters=Counter({"negative_under_15m": 3, "followed_up_under_15m": 2}))),
        (first, BucketTotals(counters=Counter({"recovered_under_15m": 1, "negative_over_4h": 1}))),
        (later, BucketTotals(counters=Counter({"negative_under_15m": 1, "followed_up_under_15m": 1}))),
        (later, BucketTotals(counters=Counter({"recovered_under_15m": 1}))),
    ]

    overall, by_band = metrics.recovery(buckets)

    assert (overall.negative, overall.followed_up, overall.recovered, overall.no_follow_up) == (5, 3, 2, 2)
    assert overall.recovery_rate == pytest.approx(2 / 3)
    assert [band.response_band for band in by_band] == list(ResponseBand)
    fastest, _, _, slowest = by_band
    assert (fastest.negative, fastest.followed_up, fastest.recovered, fastest.recovery_rate) == (4, 3, 2, 2 / 3)
    assert (slowest.negative, slowest.no_follow_up, slowest.recovery_rate) == (1, 1, None)


def test_no_buckets_give_zeros_and_no_rate() -> None:
    overall, by_band = metrics.recovery([])

    assert (overall.negative, overall.followed_up, overall.recovered, overall.recovery_rate) == (0, 0, 0, None)
    assert all(band.recovery_rate is None for band in by_band)
