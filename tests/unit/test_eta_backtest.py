"""The backtest of the wait estimate (services.estimating): each prediction knows only the past."""

from __future__ import annotations

import json
import statistics
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from replyclock.logic import eta
from replyclock.models.domain import Clock, Priority, Wait, WaitKind, WaitStatus
from replyclock.services import estimating

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)  # a Monday


def wait(
    number: int,
    started: datetime,
    latency: float | None,
    *,
    brand_id: str = "acme",
    kind: WaitKind = WaitKind.FIRST,
    channel: str = "x",
) -> Wait:
    answered = latency is not None
    return Wait(
        kind=kind,
        brand_id=brand_id,
        channel=channel,
        conversation_id=f"c{number}",
        customer=f"customer{number}",
        start_post_id=f"p{number}",
        started_at=started,
        end_post_id=f"r{number}" if answered else None,
        ended_at=started + timedelta(seconds=latency) if latency is not None else None,
        calendar_seconds=latency,
        business_seconds=latency,
        priority=Priority.NORMAL,
        policy_version=1,
        clock=Clock.CALENDAR,
        target_seconds=3600,
        due_at=started + timedelta(hours=1),
        at_risk_at=started + timedelta(minutes=45),
        status=(WaitStatus.MET if latency <= 3600 else WaitStatus.BREACHED)
        if latency is not None
        else WaitStatus.PENDING,
    )


def test_a_prediction_sees_only_waits_answered_before_it() -> None:
    # Five answered within the hour before, one answered only after the wait we predict, one still open
    history = [wait(n, T0 + timedelta(minutes=n), 60.0 * n) for n in range(1, 6)]
    answered_later = wait(6, T0 + timedelta(minutes=10), 4 * 3600.0)
    never = wait(7, T0 + timedelta(minutes=11), None)
    target = wait(8, T0 + timedelta(hours=1), 90.0)

    predictions = estimating.predict_in_time_order([target, never, answered_later, *history])

    at_target = next(prediction for prediction in predictions if prediction.wait == target)
    assert at_target.estimate.recent_answered == 5
    assert at_target.estimate.open_waits == 2  # the one answered later and the one never answered
    assert at_target.estimate.expected_seconds == pytest.approx(180.0, rel=0.01)
    assert at_target.baseline == (180.0, 60.0, 300.0)
    assert at_target.actual_seconds == 90.0


def test_the_first_waits_before_enough_history_get_no_estimate() -> None:
    waits = [wait(n, T0 + timedelta(hours=n), 120.0) for n in range(10)]

    predictions = estimating.predict_in_time_order(waits)

    assert [prediction.estimate.has_estimate for prediction in predictions] == [False] * 5 + [True] * 5
    assert [prediction.baseline is not None for prediction in predictions] == [False] * 5 + [True] * 5


def test_next_waits_count_in_the_backlog_but_are_not_predicted() -> None:
    waits = [wait(1, T0, 60.0), wait(2, T0 + timedelta(minutes=1), None, kind=WaitKind.NEXT)]
    target = wait(3, T0 + timedelta(minutes=5), 30.0)

    predictions = estimating.predict_in_time_order([*waits, target])

    assert [prediction.wait for prediction in predictions] == [waits[0], target]
    assert predictions[1].estimate.open_waits == 1


def test_the_baseline_forgets_answers_older_than_seven_days() -> None:
    old = [wait(n, T0 + timedelta(minutes=n), 10.0) for n in range(5)]
    recent = [wait(10 + n, T0 + timedelta(days=8, minutes=n), 1_000.0 + n) for n in range(5)]
    target = wait(99, T0 + timedelta(days=8, hours=2), 500.0)

    predictions = estimating.predict_in_time_order([*old, *recent, target])

    assert predictions[-1].baseline is not None
    assert predictions[-1].baseline[0] == statistics.median(1_000.0 + n for n in range(5))


def test_brands_and_channels_are_estimated_apart() -> None:
    others = [wait(n, T0 + timedelta(minutes=n), 5.0, brand_id="globex") for n in range(10)]
    others += [wait(20 + n, T0 + timedelta(minutes=n), 5.0, channel="mastodon") for n in range(10)]
    target = wait(99, T0 + timedelta(hours=1), 60.0)

    predictions = estimating.predict_in_time_order([*others, target])

    assert not predictions[-1].estimate.has_estimate and predictions[-1].baseline is None


def test_the_score_is_median_absolute_error_coverage_and_width_on_the_waits_both_predict() -> None:
    waits = [wait(n, T0 + timedelta(hours=n), 100.0 * (n % 4 + 1)) for n in range(12)]
    predictions = estimating.predict_in_time_order(waits)

    report = estimating.score(predictions, "acme")

    scored = [p for p in predictions if p.estimate.has_estimate and p.baseline is not None]
    assert report.first_waits == report.answered == 12 and report.compared == len(scored)
    assert len(scored) == 12 - eta.MIN_ANSWERED
    errors = [abs(p.baseline[0] - (p.actual_seconds or 0)) for p in scored if p.baseline]
    assert report.baseline.median_absolute_error == statistics.median(errors)
    inside = [p for p in scored if p.baseline and p.baseline[1] <= (p.actual_seconds or 0) <= p.baseline[2]]
    assert report.baseline.coverage == len(inside) / len(scored)


def test_the_report_breaks_out_the_busiest_brands() -> None:
    waits = [wait(n, T0 + timedelta(minutes=n), 60.0, brand_id="busy") for n in range(6)]
    waits += [wait(10 + n, T0 + timedelta(minutes=n), 60.0, brand_id="quiet") for n in range(2)]

    reports = estimating.backtest(estimating.predict_in_time_order(waits), busiest=1)

    assert [(report.scope, report.first_waits) for report in reports] == [("all brands", 8), ("busy", 6)]


def test_an_export_is_folded_with_the_measuring_paths_waits(tmp_path: Path) -> None:
    export = tmp_path / "twcs.csv"
    export.write_text(
        "tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id\n"
        "1,101,True,Mon Nov 02 09:00:00 +0000 2026,@acme help,2,\n"
        "2,acme,False,Mon Nov 02 09:03:00 +0000 2026,@101 on it,,1\n"
        "3,102,True,Mon Nov 02 09:10:00 +0000 2026,@acme hello?,,\n"
    )

    waits = estimating.export_waits(export)

    assert sorted((w.customer, w.calendar_seconds) for w in waits) == [("101", 180.0), ("102", None)]
    assert {w.kind for w in waits} == {WaitKind.FIRST} and eta.MIN_ANSWERED > len(waits)


def test_the_alternatives_are_scored_on_the_waits_the_report_scores() -> None:
    waits = [wait(n, T0 + timedelta(hours=n), 100.0 * (n % 4 + 1)) for n in range(12)]
    waits.append(wait(50, T0 + timedelta(hours=20), None))  # open: floors the backlog alternative
    predictions = estimating.predict_in_time_order(waits)

    report, scores = estimating.score(predictions, "acme"), estimating.alternatives(predictions)

    as_served = scores["the estimate (as served)"]
    assert as_served.absolute_errors == report.eta.absolute_errors and as_served.covered == report.eta.covered
    assert all(len(score.absolute_errors) == report.compared for score in scores.values())


def test_the_command_prints_the_scores_as_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from benchmarks import eta as command

    rows = ["tweet_id,author_id,inbound,created_at,text,response_tweet_id,in_response_to_tweet_id"]
    for n in range(8):  # a customer each hour, answered after (n + 1) minutes
        rows.append(f"{2 * n + 1},{100 + n},True,Mon Nov 02 {9 + n:02d}:00:00 +0000 2026,@acme help,{2 * n + 2},")
        rows.append(
            f"{2 * n + 2},acme,False,Mon Nov 02 {9 + n:02d}:{n + 1:02d}:00 +0000 2026,@{100 + n} on it,,{2 * n + 1}"
        )
    export = tmp_path / "twcs.csv"
    export.write_text("\n".join(rows) + "\n")

    command.main([str(export), "--json"])

    printed = json.loads(capsys.readouterr().out)
    everyone = printed["scopes"][0]
    assert (everyone["scope"], everyone["first_waits"], everyone["answered"], everyone["compared"]) == (
        "all brands",
        8,
        8,
        8 - eta.MIN_ANSWERED,
    )
    # The baseline's median is of the answers before: 1-5, 1-6, 1-7 minutes give 3, 3.5 and 4 against 6, 7 and 8
    assert everyone["baseline"]["median_absolute_error_seconds"] == statistics.median([180.0, 210.0, 240.0])
    assert set(printed["alternatives"]) == set(estimating.ALTERNATIVES)
