"""Brand-wide buckets and monthly roll-ups: every channel and priority pre-merged, per hour, day and settled
month, always exact."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from typing import Any
from unittest.mock import patch

import pytest
import time_machine
from hypothesis import given, settings
from hypothesis import strategies as st

from devtools.localstack.lambda_runtime import FakeLambdaContext, load_handler
from devtools.localstack.template import REPO_ROOT
from replyclock.dal.aggregates import same_sums
from replyclock.dal.rollups import months_between
from replyclock.logic import metrics as metrics_logic
from replyclock.logic.aggregation import BucketTotals, Granularity, RollupKey
from replyclock.models.domain import Brand, Post, WaitKind
from replyclock.services.reconciling import reconcile_days
from replyclock.services.rolling_up import ANNOUNCE_LEAD, SETTLE_AGE, roll_up
from tests.support.api import METRICS_EVENTS, ApiClient, answer_as_planned, answer_from_hours_alone, metrics_query
from tests.support.builders import brand, customer
from tests.support.expectations import brand_directory, expected_waits
from tests.support.fixtures import load_event
from tests.support.pipeline import Pipeline

ACME = Brand(id="acme", name="Acme")
START = datetime(2026, 8, 20, 9, 0, tzinfo=UTC)
SPAN_DAYS = 75
# A sweep when every day of the scenario has settled.
SETTLED = START + timedelta(days=SPAN_DAYS) + SETTLE_AGE + timedelta(days=1)


def scenario(seed: int = 3, conversations: int = 60) -> list[Post]:
    """Conversations over 75 days on two channels; about one question in five is left unanswered."""
    generator = random.Random(seed)
    posts = []
    for n in range(conversations):
        channel, asked = generator.choice(["x", "reddit"]), generator.randint(0, SPAN_DAYS * 24 * 60)
        posts.append(customer(f"{n}q", asked, conversation=f"r{n}", channel=channel, start=START))
        if generator.random() < 0.8:
            answered = asked + generator.randint(1, 3000)
            posts.append(brand(f"{n}a", answered, reply_to=f"{n}q", conversation=f"r{n}", channel=channel, start=START))
    return posts


def expected_rollups(posts: list[Post], granularity: Granularity) -> dict[tuple[str, WaitKind], BucketTotals]:
    """(period, kind) -> the totals of every wait started in it, whatever its channel or priority."""
    expected: dict[tuple[str, WaitKind], BucketTotals] = defaultdict(BucketTotals)
    for waits in expected_waits(posts, brand_directory([ACME])).values():
        for wait in waits:
            expected[(granularity.label(wait.started_at), wait.kind)].merge(BucketTotals.of_wait(wait))
    return expected


def stored_rollups(pipeline: Pipeline, granularity: Granularity) -> dict[tuple[str, WaitKind], BucketTotals]:
    if granularity is Granularity.MONTH:
        stored = pipeline.rollups.read("acme", "0", "9")
    else:
        stored = pipeline.buckets.query_brand_wide("acme", granularity, "0", "9")
    return {(key.period, key.kind): totals for key, totals in stored}


def assert_exact(pipeline: Pipeline, posts: list[Post], through: date | None = None) -> None:
    """Every brand-wide hour and day, and every month that ends by `through`, holds exactly what its waits say."""
    for granularity in (Granularity.HOUR, Granularity.DAY, Granularity.MONTH):
        expected = expected_rollups(posts, granularity)
        stored = stored_rollups(pipeline, granularity)
        if granularity is Granularity.MONTH:
            reach = f"{through + timedelta(days=1):%Y-%m}" if through else ""
            expected = {key: totals for key, totals in expected.items() if key[0] < reach}
            stored = {key: totals for key, totals in stored.items() if key[0] < reach}
        assert set(stored) == set(expected), (granularity, sorted(set(stored) ^ set(expected)))
        for key in expected:
            assert same_sums(stored[key], expected[key]), (granularity, key)


def measured(pipeline: Pipeline, posts: list[Post]) -> None:
    pipeline.write(posts)
    pipeline.run()


def built(pipeline: Pipeline, now: datetime = SETTLED) -> Any:
    """Two sweeps: one announces the settled days, one builds them a lead later."""
    announced = roll_up(pipeline.rollups, ["acme"], now)
    return announced, roll_up(pipeline.rollups, ["acme"], now + ANNOUNCE_LEAD)


def test_settled_days_are_announced_first_and_built_only_a_lead_later(pipeline: Pipeline) -> None:
    # Given 75 days of measured conversations
    pipeline.add_brands([ACME])
    posts = scenario()
    measured(pipeline, posts)

    # When a sweep runs once every day has settled, again a minute later, and again a lead later
    announced = roll_up(pipeline.rollups, ["acme"], SETTLED)
    too_soon = roll_up(pipeline.rollups, ["acme"], SETTLED + timedelta(minutes=1))
    before_lead = stored_rollups(pipeline, Granularity.MONTH)
    after_lead = roll_up(pipeline.rollups, ["acme"], SETTLED + ANNOUNCE_LEAD)

    # Then the first announced every settled day, the second wrote nothing, the third built every whole month
    last_settled = (SETTLED - SETTLE_AGE).date()
    assert announced.announced == {"acme": last_settled.isoformat()} and announced.rollups_written == 0
    assert too_soon.rollups_written == 0 and before_lead == {}
    assert after_lead.built == {"acme": last_settled.isoformat()}
    assert pipeline.rollups.watermark("acme").built == last_settled
    assert {month for month, _ in stored_rollups(pipeline, Granularity.MONTH)} == {"2026-08", "2026-09", "2026-10"}
    assert_exact(pipeline, posts, last_settled)


def test_a_second_build_of_unchanged_days_writes_nothing(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    measured(pipeline, scenario())
    built(pipeline)

    # When the months are rebuilt again over the same days
    written = pipeline.rollups.rebuild_months("acme", "2026-08", "2026-10")

    assert written == 0


def test_a_late_answer_on_a_rolled_up_day_brings_that_day_and_its_month_up_to_date(pipeline: Pipeline) -> None:
    # Given roll-ups built over 75 days, with one question of the first week still unanswered
    pipeline.add_brands([ACME])
    posts = [*scenario(), customer("late-q", 60, conversation="late", start=START)]
    measured(pipeline, posts)
    built(pipeline)

    # When the brand answers it weeks later
    answer = brand("late-a", 60 * 24 * 40, reply_to="late-q", conversation="late", start=START)
    measured(pipeline, [answer])

    # Then the brand-wide hour and day of the question and its month hold the answer, as do all the others
    assert_exact(pipeline, [*posts, answer], (SETTLED - SETTLE_AGE).date())


def test_days_measured_between_announcement_and_build_are_in_the_build(pipeline: Pipeline) -> None:
    # Given an announcement over days that then receive more conversations before the build
    pipeline.add_brands([ACME])
    first, more = scenario(seed=1), scenario(seed=2, conversations=30)
    more = [
        post.model_copy(update={"conversation_id": f"m{post.conversation_id}", "id": f"m{post.id}"}) for post in more
    ]
    more = [
        post.model_copy(update={"in_reply_to": f"m{post.in_reply_to}"}) if post.in_reply_to else post for post in more
    ]
    measured(pipeline, first)
    roll_up(pipeline.rollups, ["acme"], SETTLED)
    measured(pipeline, more)

    # When the lead has passed
    roll_up(pipeline.rollups, ["acme"], SETTLED + ANNOUNCE_LEAD)

    # Then the build holds both
    assert_exact(pipeline, [*first, *more], (SETTLED - SETTLE_AGE).date())


def test_reconcile_brings_the_rollups_of_the_days_it_repairs_up_to_date(pipeline: Pipeline) -> None:
    # Given built roll-ups, then an hourly bucket knocked off the truth, and everything above it following it
    pipeline.add_brands([ACME])
    posts = scenario()
    measured(pipeline, posts)
    built(pipeline)
    key, _ = pipeline.buckets.query("acme", "0", "9")[0]
    stored = pipeline.buckets.read_days("acme", key.period[:10], key.period[:10])[key]
    pipeline.buckets.rewrite(key, BucketTotals(), stored.guards, stored.revision)
    for follower in (key.day(), RollupKey.of(key), RollupKey.of(key).day()):
        pipeline.buckets.rebuild(follower)
    pipeline.rollups.rebuild_months("acme", key.period[:7], key.period[:7])

    # When that day is reconciled
    day = date.fromisoformat(key.period[:10])
    outcome = reconcile_days(pipeline.conversations, pipeline.buckets, pipeline.rollups, "acme", day, day, SETTLED)

    # Then the brand-wide hour, day and month are exact again
    assert outcome.rollups_written >= 1
    assert_exact(pipeline, posts, (SETTLED - SETTLE_AGE).date())


def test_a_long_history_is_announced_a_year_at_a_time_and_built_a_month_per_step(pipeline: Pipeline) -> None:
    # Given conversations 30 months ago and yesterday
    pipeline.add_brands([ACME])
    old_start, now = datetime(2024, 5, 10, 12, tzinfo=UTC), datetime(2026, 11, 29, 12, tzinfo=UTC)
    posts = [
        customer("old", 0, conversation="old", start=old_start),
        brand("old-a", 30, reply_to="old", conversation="old", start=old_start),
    ]
    measured(pipeline, posts)

    # When sweeps run, one lead apart, each allowed to build one month before running out of time
    sweeps = []
    moment = now
    while (pipeline.rollups.watermark("acme").built or date.min) < (now - SETTLE_AGE).date() and len(sweeps) < 60:
        checks = iter([False, False, True])
        sweeps.append(roll_up(pipeline.rollups, ["acme"], moment, out_of_time=lambda checks=checks: next(checks)))
        moment += ANNOUNCE_LEAD

    # Then the first announcement reached a year, and the history was built whole, step by step
    assert sweeps[0].announced == {"acme": (old_start.date() + timedelta(days=365)).isoformat()}
    built_after = [date.fromisoformat(sweep.built["acme"]) for sweep in sweeps if sweep.built]
    # each sweep built at most one whole month (and then, at the end of an announcement, the days after it)
    steps = zip(built_after, built_after[1:], strict=False)
    assert all(len(months_between(earlier + timedelta(days=1), later)) <= 2 for earlier, later in steps)
    assert len(built_after) >= len(months_between(old_start.date(), now.date())) - 1
    assert (pipeline.rollups.watermark("acme").built or date.min) >= (now - SETTLE_AGE).date()
    assert same_sums(
        stored_rollups(pipeline, Granularity.MONTH)[("2024-05", WaitKind.FIRST)],
        expected_rollups(posts, Granularity.MONTH)[("2024-05", WaitKind.FIRST)],
    )


def test_the_sweep_handler_rolls_up_settled_days(pipeline: Pipeline) -> None:
    pipeline.add_brands([ACME])
    measured(pipeline, scenario())
    handler = load_handler(REPO_ROOT / "functions" / "sweep" / "app.py")

    for moment in (SETTLED, SETTLED + ANNOUNCE_LEAD):
        with time_machine.travel(moment, tick=False):
            response = handler(load_event("sweep_schedule.json"), FakeLambdaContext())

    assert response["rollups_written"] > 0
    assert pipeline.rollups.watermark("acme").built == (SETTLED - SETTLE_AGE).date()


def test_rollups_answer_exactly_as_hourly_buckets_alone_for_any_window(api: ApiClient, pipeline: Pipeline) -> None:
    # Given 75 days measured and rolled up (the last few days not yet: they are not settled)
    pipeline.add_brands([ACME])
    measured(pipeline, scenario())
    built(pipeline)
    assert stored_rollups(pipeline, Granularity.MONTH)

    # When any window is asked for, read through roll-ups, daily and hourly buckets, or hourly buckets alone
    @settings(max_examples=25, deadline=None)
    @given(
        start=st.integers(-5 * 24, (SPAN_DAYS + 5) * 24),
        hours=st.integers(0, 80 * 24),
        event=st.sampled_from(METRICS_EVENTS),
        channel=st.sampled_from([None, "reddit"]),
    )
    def same_answers(start: int, hours: int, event: str, channel: str | None) -> None:
        window_start = START + timedelta(hours=start, minutes=17)
        query = metrics_query(event, window_start, window_start + timedelta(hours=hours), channel)

        # Then the answers are identical, to the byte
        assert answer_as_planned(api, event, query) == answer_from_hours_alone(api, event, query)

    same_answers()


def test_an_unfiltered_summary_reads_brand_wide_items_and_a_filtered_one_per_channel_buckets(
    api: ApiClient, pipeline: Pipeline
) -> None:
    # Given 75 days rolled up
    pipeline.add_brands([ACME])
    measured(pipeline, scenario())
    built(pipeline)
    read: list[Any] = []
    original = metrics_logic.read_plan

    def recording(*args: Any, **kwargs: Any) -> list[metrics_logic.ReadPiece]:
        pieces = original(*args, **kwargs)
        read.append(pieces)
        return pieces

    window = {"brand": "acme", "from": START.isoformat(), "to": (START + timedelta(days=70)).isoformat()}
    with patch.object(metrics_logic, "read_plan", recording):
        assert api.call("api_metrics_summary.json", query=window).status == 200
        unfiltered = read[-1]
        assert api.call("api_metrics_summary.json", query=window | {"channel": "x"}).status == 200
        filtered = read[-1]

    assert {(piece.granularity, piece.brand_wide) for piece in unfiltered} == {
        (Granularity.HOUR, True),
        (Granularity.DAY, True),
        (Granularity.MONTH, True),
    }
    assert not any(piece.brand_wide for piece in filtered)


def test_a_rollup_cannot_be_split_by_channel() -> None:
    rollup = RollupKey("acme", "2026-11", WaitKind.FIRST, Granularity.MONTH)

    with pytest.raises(ValueError, match="roll-up"):
        list(metrics_logic.select([(rollup, BucketTotals())], channel="x"))
