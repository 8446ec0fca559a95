"""Auto-reply patterns run on RE2: matching time is linear in the text, whatever the pattern."""

from __future__ import annotations

import time

import pytest

from replyclock.logic.patterns import compile_matcher, pattern_error
from replyclock.logic.waits import auto_reply_matcher
from replyclock.models.domain import Brand


@pytest.mark.parametrize("pattern", ["(a+)+$", "(a|a)*$", "(a*)*b", "(.*a){12}"])
def test_catastrophic_backtracking_patterns_match_in_linear_time(pattern: str) -> None:
    # Python's re took 23 s on (a+)+$ against 26 'A's, and 4 times longer with each 2 more (30: ~90 s), so a
    # regression fails here in bounded time; RE2 takes microseconds, and stays linear on long texts.
    matches = auto_reply_matcher(Brand(id="acme", name="Acme", auto_reply_patterns=[pattern]))

    started = time.monotonic()
    matches("A" * 30 + "!")
    assert time.monotonic() - started < 1
    matches_long, _ = compile_matcher([pattern])
    started = time.monotonic()
    matches_long("A" * 20_000 + "!")
    assert time.monotonic() - started < 1


def test_matching_is_case_insensitive_and_any_pattern_may_match() -> None:
    matches, refused = compile_matcher(["^thanks for reaching out", r"ticket #\d+"])

    assert matches("Thanks for reaching out! DM us") and matches("see TICKET #42")
    assert not matches("we're on it") and refused == ()


def test_a_stored_pattern_re2_refuses_matches_nothing_instead_of_backtracking() -> None:
    # A brand stored before patterns were checked may hold a backreference: it is skipped, the others still match.
    matches, refused = compile_matcher([r"(a)\1", "^auto"])

    assert refused == (r"(a)\1",)
    assert matches("Auto-reply") and not matches("aa")


@pytest.mark.parametrize("pattern", [r"(a)\1", "(?=x)", "(?<=x)y", "a{1000}{1000}", "x" * 501, "(unclosed"])
def test_patterns_re2_cannot_take_are_named(pattern: str) -> None:
    assert pattern_error(pattern) is not None


def test_ordinary_patterns_are_taken() -> None:
    assert pattern_error(r"^(thanks|merci)\b.*\bDM\b") is None
