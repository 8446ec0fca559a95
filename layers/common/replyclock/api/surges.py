"""GET /brands/{id}/surges: the brand's mention surges, open now and opened in a recent window.

Reads one Query of the brand's open episodes (at most one per channel) and one Query of the episodes
opened in the window, bounded by `limit`: the cost is known before reading, whatever the brand's history.
Episodes are written by the sweeper (services.surging) and kept 90 days.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Query

from replyclock.api.brands import require_known_brand
from replyclock.api.dependencies import Now, StoresDependency
from replyclock.api.errors import route_responses
from replyclock.api.parameters import BrandPath, ChannelQuery
from replyclock.api.routing import new_router
from replyclock.dal.surges import EPISODE_RETENTION, SurgeEpisode, SurgeStore
from replyclock.logic.surges import SLOT
from replyclock.models.api import SurgeList, SurgeOut, SurgePostOut

router = new_router()
MAX_LIMIT = 500
DaysQuery = Annotated[
    int,
    Query(
        ge=1,
        le=EPISODE_RETENTION.days,
        description=f"The window: surges opened in the last this many days (1 to {EPISODE_RETENTION.days}).",
    ),
]
LimitQuery = Annotated[int, Query(ge=1, le=MAX_LIMIT, description=f"At most this many surges (1 to {MAX_LIMIT}).")]


def surge_out(episode: SurgeEpisode) -> SurgeOut:
    return SurgeOut(
        id=episode.surge_id,
        channel=episode.channel,
        status="open" if episode.is_open else "closed",
        started_at=episode.opened_slot,
        opened_at=episode.opened_at,
        ended_at=episode.closed_slot,
        closed_at=episode.closed_at,
        window_minutes=episode.window_slots * int(SLOT.total_seconds() // 60),
        arrivals=episode.arrivals,
        expected=round(episode.baseline_per_slot * episode.window_slots, 3),
        ratio=round(episode.ratio, 3),
        baseline_per_5min=round(episode.baseline_per_slot, 3),
        peak_arrivals_per_5min=episode.peak_arrivals,
        top_posts=[
            SurgePostOut(
                channel=post.channel or episode.channel,
                post_id=post.post_id,
                conversation_id=post.conversation_id,
                customer=post.customer,
                posted_at=post.posted_at,
                exposure=post.exposure,
                url=post.url,
                excerpt=post.excerpt,
            )
            for post in episode.top_posts
        ],
    )


@router.get(
    "/brands/<brand_id>/surges",
    summary="A brand's mention surges: open now, and opened in the last days",
    description="A surge is a brand's channel receiving far more mentions (waits opened) per 5 minutes than its "
    "own baseline: the same hour of the week over the last 4 weeks, the hour before, or a floor, whichever is "
    "highest. It opens once per episode (with an alert carrying its top unanswered posts) and closes when 15 "
    "minutes of complete slots are back to the baseline it opened against. A brand seen on several channels is "
    "also judged as a whole: its brand-wide surges have channel `*`.",
    responses=route_responses(400, 404),
    tags=["brands"],
)
def list_surges(
    brand_id: BrandPath,
    now: Now,
    stores: StoresDependency,
    days: DaysQuery = 7,
    channel: ChannelQuery = None,
    limit: LimitQuery = 100,
) -> SurgeList:
    require_known_brand(stores, brand_id)
    store = SurgeStore(stores.table_name)
    since = now - timedelta(days=days)
    # One more than asked: whether the window held more.
    opened = store.episodes(brand_id, since, now, limit + 1, channel)
    open_now = [
        current.episode
        for current in store.open_episodes(brand_id).values()
        if channel is None or current.episode.channel == channel
    ]
    # The open item and the episode's own item may differ only in the peak, raised on both; the episode's wins.
    by_id = {episode.surge_id: episode for episode in opened}
    return SurgeList(
        brand_id=brand_id,
        since=since,
        until=now,
        open=[surge_out(by_id.get(episode.surge_id, episode)) for episode in sorted(open_now, key=lambda e: e.channel)],
        surges=[surge_out(episode) for episode in opened[:limit]],
        truncated=len(opened) > limit,
    )
