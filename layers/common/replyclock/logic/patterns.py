"""Auto-reply patterns, matched in time linear in the text: RE2 (google-re2), never a backtracking engine.

Python's `re` backtracks: `(a+)+$` against 26 'A's and a '!' took 23 s, and a brand's pattern is
matched against every post its handles take part in. RE2 compiles a pattern to an automaton whose
matching time grows with the length of the text only; it has no backreferences or lookaround, so a
pattern that needs them is refused (422 at PUT /brands/{id}) rather than run on a backtracking engine.
re2 is imported on first use: the API's cold start needs it for PUT /brands only.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import lru_cache
from typing import Any

MAX_PATTERN_LENGTH = 500
# RE2's memory budget for one compiled pattern (its default is 8 MiB): `a{1000}{1000}` is refused, not built.
_MAX_PROGRAM_BYTES = 1 << 20


def _options() -> Any:
    import re2  # type: ignore[import-untyped]

    options = re2.Options()
    options.case_sensitive = False
    options.log_errors = False
    options.max_mem = _MAX_PROGRAM_BYTES
    return options


def pattern_error(pattern: str) -> str | None:
    """Why RE2 will not take the pattern (None: it does); also refuses patterns longer than MAX_PATTERN_LENGTH."""
    import re2

    if len(pattern) > MAX_PATTERN_LENGTH:
        return f"longer than {MAX_PATTERN_LENGTH} characters"
    try:
        re2.compile(pattern, _options())
    except re2.error as error:
        detail = error.args[0] if error.args else error
        text = detail.decode(errors="replace") if isinstance(detail, bytes) else str(detail)
        return f"not a linear-time (RE2) regex: {text} (no backreferences or lookaround)"
    return None


def compile_matcher(patterns: Sequence[str]) -> tuple[Callable[[str], bool], tuple[str, ...]]:
    return _compiled(tuple(patterns))


@lru_cache(maxsize=256)
def _compiled(patterns: tuple[str, ...]) -> tuple[Callable[[str], bool], tuple[str, ...]]:
    """A case-insensitive test for "any pattern matches somewhere", and the patterns RE2 refused (skipped).

    Patterns are checked at PUT time; a brand stored before that check may hold one RE2 refuses, which
    then matches nothing rather than running on a backtracking engine.
    """
    import re2

    usable = [pattern for pattern in patterns if pattern_error(pattern) is None]
    refused = tuple(pattern for pattern in patterns if pattern not in usable)
    if not usable:
        return (lambda text: False), refused
    try:
        combined = re2.compile("|".join(f"(?:{pattern})" for pattern in usable), _options())
    except re2.error:
        # Each fits RE2's memory budget but not all of them at once: one automaton each.
        each = [re2.compile(pattern, _options()) for pattern in usable]
        return (lambda text: any(compiled.search(text) is not None for compiled in each)), refused
    return (lambda text: combined.search(text) is not None), refused
