"""How what a connector made of an item is measured: labelled posts per the brand's label policy, private
mentions per its direct-mention setting (replyclock.logic.waits.is_measured, replyclock.logic.items.routed)."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from replyclock.logic.items import routed
from replyclock.logic.waits import compute_waits
from replyclock.models.domain import Brand, DirectMentions, LabelPolicy, Post
from tests.support.builders import brand, customer
from tests.support.expectations import brand_directory

ACME = Brand(id="acme", name="Acme", handles={"bluesky": ["acme"], "mastodon": ["acme"]})


def labelled(post: Post, *labels: str) -> Post:
    return post.model_copy(update={"labels": labels})


def waits_for(posts: list[Post], who: Brand = ACME) -> dict[str, list[tuple[str, str | None]]]:
    directory = brand_directory([who])
    return {
        name: [(wait.start_post_id, wait.end_post_id) for wait in waits]
        for name, waits in compute_waits(posts, who, directory.brand_for_handle).items()
    }


def test_a_spam_labelled_mention_opens_no_wait_by_default() -> None:
    # Given a spam-labelled mention and a normal one
    posts = [
        labelled(customer("p1", 0, "@acme free crypto", channel="bluesky", author="bot"), "spam"),
        customer("p2", 1, "@acme my order?", channel="bluesky", conversation="c2"),
    ]

    # When they are measured
    # Then only the normal one waits
    assert waits_for(posts) == {"alice": [("p2", None)]}


def test_a_hide_level_label_opens_no_wait_by_default() -> None:
    posts = [labelled(customer("p1", 0, "@acme hi", channel="bluesky"), "!hide")]

    assert waits_for(posts) == {}


def test_a_brand_can_measure_labelled_posts_by_emptying_its_label_policy() -> None:
    # Given a brand that measures everything
    everything = ACME.model_copy(update={"label_policy": LabelPolicy(unmeasured=[])})
    posts = [labelled(customer("p1", 0, "@acme free crypto", channel="bluesky"), "spam")]

    # Then the spam-labelled mention waits
    assert waits_for(posts, everything) == {"alice": [("p1", None)]}


def test_an_informational_label_does_not_stop_measuring() -> None:
    posts = [labelled(customer("p1", 0, "@acme look", channel="bluesky"), "graphic-media")]

    assert waits_for(posts) == {"alice": [("p1", None)]}


def test_a_reply_to_the_brand_after_a_spam_post_still_waits() -> None:
    # Given a spam post, the brand's answer to someone else, and a customer's reply to the brand
    posts = [
        labelled(customer("p1", 0, "@acme spam", channel="bluesky", author="bot"), "spam"),
        brand("b1", 1, "we are looking into it", channel="bluesky"),
        customer("p2", 2, "thanks, any news?", channel="bluesky", reply_to="b1"),
    ]

    # Then the spam opened nothing and the reply waits
    assert waits_for(posts) == {"alice": [("p2", None)]}


def test_a_quote_of_the_brands_post_waits_like_a_mention() -> None:
    # Given a quote whose connector marked it addressed to the brand (the brand's handle in its mentions)
    quote = customer("q1", 0, "this is not ok", channel="bluesky").model_copy(
        update={"mentions": ("acme",), "quote_of": "at://brand/post"}
    )

    assert waits_for([quote]) == {"alice": [("q1", None)]}


def private(post: Post) -> Post:
    return post.model_copy(update={"private": True})


def test_a_private_mention_goes_to_the_direct_channel_by_default() -> None:
    post = private(customer("d1", 0, "@acme my address is...", channel="mastodon"))

    assert routed(post, ACME).channel == "mastodon-dm"
    assert routed(post, None).channel == "mastodon-dm"


def test_a_brand_can_keep_private_mentions_on_the_public_channel_flagged() -> None:
    flagging = ACME.model_copy(update={"direct_mentions": DirectMentions.FLAG})
    post = private(customer("d1", 0, "@acme my address is...", channel="mastodon"))

    stored = routed(post, flagging)

    assert stored.channel == "mastodon"
    assert stored.private is True


def test_a_public_mention_stays_on_its_channel() -> None:
    post = customer("p1", 0, "@acme hi", channel="mastodon")

    assert routed(post, ACME) == post


def test_a_direct_mention_waits_for_the_brand_on_the_direct_channel() -> None:
    # Given a direct mention and the brand's direct answer, both on mastodon-dm (the brand has handles on mastodon)
    posts = [
        customer("d1", 0, "@acme my card was charged twice", channel="mastodon-dm"),
        brand("d2", 5, "@alice refunded", channel="mastodon-dm", reply_to="d1"),
    ]

    # Then the brand's mastodon handles count there, and the wait is met
    assert waits_for(posts) == {"alice": [("d1", "d2")]}


def test_an_unknown_direct_mentions_setting_is_refused() -> None:
    with pytest.raises(ValidationError, match="direct_mentions"):
        Brand.model_validate({"id": "acme", "name": "Acme", "direct_mentions": "sometimes"})
