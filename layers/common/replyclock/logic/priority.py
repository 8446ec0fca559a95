"""Priority of a customer post under a brand's rules."""

from __future__ import annotations

import re
from functools import lru_cache

from replyclock.models.domain import Brand, Post, Priority, PriorityRule

_WORD_BOUNDARY = r"(?<![\w#@]){}(?!\w)"


@lru_cache(maxsize=4096)
def _phrase_pattern(phrase: str) -> re.Pattern[str]:
    return re.compile(_WORD_BOUNDARY.format(re.escape(phrase.lower())))


def _rule_matches(rule: PriorityRule, text: str, reach: int | None) -> bool:
    if rule.min_reach is not None and reach is not None and reach >= rule.min_reach:
        return True
    phrases = [*rule.keywords, *("#" + tag.lstrip("#") for tag in rule.hashtags)]
    return any(_phrase_pattern(phrase).search(text) for phrase in phrases)


def classify(post: Post, brand: Brand) -> Priority:
    """The most pressing priority of any rule the post matches; `normal` when none does."""
    text = post.text.lower()
    matched = [rule.priority for rule in brand.priority_rules if _rule_matches(rule, text, post.author_reach)]
    return max(matched, key=lambda priority: priority.rank, default=Priority.NORMAL)
