"""The sentiment of a post's text: VADER's compound score, from -1 (most negative) to +1 (most positive).

VADER (vaderSentiment) is a lexicon and a handful of rules built for social-media text: it reads
capitals, "!!!", emoticons, emoji, slang and negations ("not bad") without a model to load, and
scores a tweet in well under a millisecond.

Each post is scored once, when it is first stored (dal.posts), and keeps that score: measuring reads
the stored score and never scores text, so folding a 20,000-post thread scores nothing. The
lexicon (about 7,500 words and 3,500 emoji) is loaded on the first score, not on import, so a
handler that never scores (api, sweep, aggregate) does not pay for it at cold start.
"""

from __future__ import annotations

from functools import cache
from typing import TYPE_CHECKING

from replyclock.models.domain import Post

if TYPE_CHECKING:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer  # type: ignore[import-untyped]

# VADER's own thresholds (its README): compound <= -0.05 is negative, >= 0.05 positive, neutral between.
NEGATIVE_AT_MOST = -0.05
# VADER's rules are quadratic in the words of a text (20 kB of "not very bad but" takes 5 s); the feeling
# of a complaint is in its opening, and a tweet is at most 280 characters, so only this many are scored.
MAX_SCORED_CHARS = 2_000


@cache
def _analyzer() -> SentimentIntensityAnalyzer:
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


def compound_score(text: str) -> float:
    """VADER's compound score of the text's first MAX_SCORED_CHARS characters, to three decimals, in [-1, 1]."""
    if not text.strip():
        return 0.0
    score = float(_analyzer().polarity_scores(text[:MAX_SCORED_CHARS])["compound"])
    # Three decimals, as every number the store keeps (dal.table.to_decimal), so a score reads back as it was
    # scored; clamped so it always passes Post's bounds.
    return max(-1.0, min(1.0, round(score, 3)))


def is_negative(score: float) -> bool:
    return score <= NEGATIVE_AT_MOST


def scored(post: Post) -> Post:
    """The post with the score of its text (always ours: a score an export carries is not trusted)."""
    return post.model_copy(update={"sentiment": compound_score(post.text)})
