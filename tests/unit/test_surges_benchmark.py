"""The surge evaluation (benchmarks.surges) replays the sweeper as it would have run: what it may know, and when."""

from __future__ import annotations

import random
from datetime import timedelta

from benchmarks.surges import Arrivals, replay, spike_trial, sweep_minutes
from replyclock.logic.surges import DEFAULT_POLICY, SLOT, slot_start
from tests.support.builders import T0


def test_a_reading_holds_only_the_arrivals_up_to_its_minute() -> None:
    arrivals = Arrivals([T0 + timedelta(minutes=1), T0 + timedelta(minutes=2), T0 + timedelta(minutes=3, seconds=1)])

    reading = arrivals.reading(T0 + timedelta(minutes=3), DEFAULT_POLICY)

    assert reading.counts == {T0: 2}


def test_the_sweeper_replayed_opens_one_episode_on_a_burst_and_closes_it() -> None:
    burst = [T0 + timedelta(seconds=20 * n) for n in range(8)]  # 8 arrivals within 2 min 20 s
    arrivals = Arrivals([T0 - timedelta(hours=2), *burst])

    episodes, still_open = replay(
        arrivals, sweep_minutes(arrivals.times, T0 - timedelta(hours=3), T0 + timedelta(hours=1))
    )

    [episode] = episodes
    # The first sweep minute that has seen 5 arrivals (min_arrivals; 5 in one slot is rare enough at the floor).
    assert episode.opened_at == T0 + timedelta(minutes=2)
    assert episode.opened_slot == slot_start(T0) and episode.arrivals == 7
    # Closed once three complete slots after the opening one were calm: at the start of the fourth.
    assert episode.closed_at == T0 + 4 * SLOT
    assert not still_open


def test_a_large_spike_on_a_quiet_background_is_detected_within_minutes() -> None:
    background = [T0 - timedelta(days=day, hours=3) for day in range(10)]

    trial = spike_trial(background, "acme", 50, "uniform", random.Random(1), DEFAULT_POLICY)

    assert not trial.background_surge
    assert trial.delay_minutes is not None and 0 <= trial.delay_minutes <= 5
