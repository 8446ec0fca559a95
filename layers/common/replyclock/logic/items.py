"""What a brand's settings make of an ingested item before it is stored (pure, no AWS).

A private post (Mastodon direct or followers-only) is measured on its network's direct channel
(`mastodon-dm`) or kept on the public one flagged `private`, as the brand says. Labelled posts
are stored as they are; replyclock.logic.waits.is_measured keeps the ones the brand's label
policy names from opening waits.
"""

from __future__ import annotations

from replyclock.models.domain import Brand, DirectMentions, Post, dm_channel


def routed(post: Post, brand: Brand | None) -> Post:
    """The post as it is stored for the brand whose source read it (an unconfigured brand: the defaults)."""
    setting = brand.direct_mentions if brand is not None else DirectMentions.CHANNEL
    if not post.private or setting is DirectMentions.FLAG:
        return post
    return post.model_copy(update={"channel": dm_channel(post.channel)})
