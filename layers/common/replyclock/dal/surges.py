"""Surge items: arrivals per 5-minute slot, and the surge episodes the sweeper opened and closed.

All in one partition per brand, "SURGE#<brand>":

- sk "S#<YYYY-MM-DDTHH:MM>#<channel>#<shard>": the waits that started in one slot on one channel (`n`), with
  the guards of the conversation states that added to it (as buckets keep them, dal.aggregates: the last state
  version applied, so a redelivered stream record adds nothing) and a revision `rev` every write moves on
  and is conditioned on. A slot is split in SLOT_SHARDS items by conversation state (a hash of its key), so
  its guards never near the 400 KB item limit: 16 items hold a quarter of a million conversations' guards in
  five minutes; a quiet slot has only the few shards its conversations hash to. Written whole by the
  aggregate step; expires 29 days after its last write (the seasonal baseline reads four weeks back, nothing
  reads further), so the partition holds at most four weeks of slots whatever the brand's history.
- sk "OPEN#<channel>": the episode open on a channel, if any. Put only where absent: the one gate that
  makes a surge open once per episode, however sweeps overlap; deleted when it closes.
- sk "E#<opened slot>#<channel>": an episode, open or closed, for GET /brands/{id}/surges; expires after
  EPISODE_RETENTION.

No stream consumer takes these items (measure takes posts, aggregate STATE# items).
"""

from __future__ import annotations

import json
import zlib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from replyclock.dal.aggregates import GUARD_PREFIX, expired_guards
from replyclock.dal.table import ConditionFailed, batch_get_items, get_table, put_if, query_items, translate
from replyclock.logic.surges import SLOT, SlotKey, slot_from_label, slot_label

SLOT_ITEM_TYPE = "surge_slot"
EPISODE_ITEM_TYPE = "surge"
OPEN_ITEM_TYPE = "surge_open"
# Four weeks of seasonal baseline and the hour before: nothing reads a slot older than that, so the aggregate step
# writes none (services.surging.count_arrivals) and each expires this long after its last write.
SLOT_RETENTION = timedelta(days=29)
EPISODE_RETENTION = timedelta(days=90)
# After any channel name ([a-z0-9_-]): the upper bound of a key range over channels.
_AFTER_CHANNELS = "~"


def surge_pk(brand_id: str) -> str:
    return f"SURGE#{brand_id}"


SLOT_SHARDS = 16


@dataclass(frozen=True, order=True)
class SlotShard:
    """The part of a slot that one conversation state's arrivals are counted in."""

    key: SlotKey
    shard: int

    @classmethod
    def of(cls, key: SlotKey, source_key: str) -> SlotShard:
        return cls(key, zlib.crc32(source_key.encode()) % SLOT_SHARDS)


def slot_item_key(part: SlotShard) -> dict[str, str]:
    key = part.key
    return {"pk": surge_pk(key.brand_id), "sk": f"S#{key.slot}#{key.channel}#{part.shard:02d}"}


@dataclass(frozen=True)
class StoredSlot:
    """A slot item as read: its count, guards and revision (0 and none for an absent item)."""

    count: int = 0
    guards: dict[str, str] = field(default_factory=dict)
    revision: int = 0


def _stored_slot(item: Mapping[str, Any] | None) -> StoredSlot:
    if item is None:
        return StoredSlot()
    guards = {str(name): str(value) for name, value in item.items() if str(name).startswith(GUARD_PREFIX)}
    return StoredSlot(int(item.get("n", 0)), guards, int(item.get("rev", 0)))


@dataclass(frozen=True)
class TopPost:
    """One of the posts an alert shows: an unanswered mention of the surge, the most exposed first."""

    post_id: str
    conversation_id: str
    customer: str
    posted_at: datetime
    exposure: int = 0
    url: str | None = None
    excerpt: str = ""
    # Its own channel (a brand-wide surge's posts come from several).
    channel: str = ""

    def to_record(self) -> dict[str, Any]:
        return {
            "channel": self.channel,
            "post_id": self.post_id,
            "conversation_id": self.conversation_id,
            "customer": self.customer,
            "posted_at": self.posted_at.isoformat(),
            "exposure": self.exposure,
            "url": self.url,
            "excerpt": self.excerpt,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> TopPost:
        return cls(
            post_id=str(record["post_id"]),
            conversation_id=str(record["conversation_id"]),
            customer=str(record["customer"]),
            posted_at=datetime.fromisoformat(str(record["posted_at"])),
            exposure=int(record.get("exposure", 0)),
            url=record.get("url"),
            excerpt=str(record.get("excerpt", "")),
            channel=str(record.get("channel", "")),
        )


@dataclass(frozen=True)
class SurgeEpisode:
    brand_id: str
    channel: str
    # The slot the surge was first seen in, and when the sweeper saw it.
    opened_slot: datetime
    opened_at: datetime
    baseline_per_slot: float
    # The window that opened it: its length in slots, its arrivals, and arrivals over expected.
    window_slots: int
    arrivals: int
    ratio: float
    # The most arrivals seen in one slot while it was open.
    peak_arrivals: int
    top_posts: tuple[TopPost, ...] = ()
    # The first slot after the rate returned, and when the sweeper saw that; None while open.
    closed_slot: datetime | None = None
    closed_at: datetime | None = None

    @property
    def surge_id(self) -> str:
        return f"{self.brand_id}:{self.channel}:{slot_label(self.opened_slot)}"

    @property
    def is_open(self) -> bool:
        return self.closed_slot is None

    def to_record(self) -> dict[str, Any]:
        return {
            "brand_id": self.brand_id,
            "channel": self.channel,
            "opened_slot": self.opened_slot.isoformat(),
            "opened_at": self.opened_at.isoformat(),
            "baseline_per_slot": self.baseline_per_slot,
            "window_slots": self.window_slots,
            "arrivals": self.arrivals,
            "ratio": self.ratio,
            "peak_arrivals": self.peak_arrivals,
            "top_posts": [post.to_record() for post in self.top_posts],
            "closed_slot": self.closed_slot.isoformat() if self.closed_slot else None,
            "closed_at": self.closed_at.isoformat() if self.closed_at else None,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> SurgeEpisode:
        def moment(name: str) -> datetime | None:
            value = record.get(name)
            return datetime.fromisoformat(str(value)) if value else None

        opened_slot, opened_at = moment("opened_slot"), moment("opened_at")
        assert opened_slot is not None and opened_at is not None, "an episode has opened"
        return cls(
            brand_id=str(record["brand_id"]),
            channel=str(record["channel"]),
            opened_slot=opened_slot,
            opened_at=opened_at,
            baseline_per_slot=float(record["baseline_per_slot"]),
            window_slots=int(record["window_slots"]),
            arrivals=int(record["arrivals"]),
            ratio=float(record["ratio"]),
            peak_arrivals=int(record.get("peak_arrivals", 0)),
            top_posts=tuple(TopPost.from_record(post) for post in record.get("top_posts") or []),
            closed_slot=moment("closed_slot"),
            closed_at=moment("closed_at"),
        )


@dataclass(frozen=True)
class OpenEpisode:
    episode: SurgeEpisode
    # Its opening alert is in the outbox (SurgeStore.mark_alerted).
    alerted: bool


def _episode_sk(episode: SurgeEpisode) -> str:
    return f"E#{slot_label(episode.opened_slot)}#{episode.channel}"


def _open_sk(channel: str) -> str:
    return f"OPEN#{channel}"


def _episode_item(episode: SurgeEpisode, item_type: str, sort_key: str) -> dict[str, Any]:
    # The record as JSON: floats and nested posts round-trip without Decimal conversions.
    return {
        "pk": surge_pk(episode.brand_id),
        "sk": sort_key,
        "item_type": item_type,
        "episode": json.dumps(episode.to_record(), sort_keys=True),
        "opened_slot": slot_label(episode.opened_slot),
        "channel": episode.channel,
        "peak_arrivals": episode.peak_arrivals,
        "expires_at": int((episode.opened_at + EPISODE_RETENTION).timestamp()),
    }


def _episode_of(item: Mapping[str, Any]) -> SurgeEpisode:
    record = json.loads(str(item["episode"]))
    # The peak is kept up to date on the item itself (raise_peak), not in its JSON.
    record["peak_arrivals"] = max(int(record.get("peak_arrivals", 0)), int(item.get("peak_arrivals", 0)))
    return SurgeEpisode.from_record(record)


class SurgeStore:
    def __init__(self, table_name: str) -> None:
        self._table = get_table(table_name)

    # Slots: written by the aggregate step.

    def read_slots(self, parts: Iterable[SlotShard]) -> dict[SlotShard, StoredSlot]:
        wanted = {(item_key := slot_item_key(part))["sk"] + "|" + item_key["pk"]: part for part in parts}
        found = {
            f"{item['sk']}|{item['pk']}": item
            for item in batch_get_items(self._table, [slot_item_key(key) for key in wanted.values()], consistent=True)
        }
        return {key: _stored_slot(found.get(name)) for name, key in wanted.items()}

    def write_slot(
        self, part: SlotShard, read: StoredSlot, added: int, guards_written: Mapping[str, str], now: datetime
    ) -> None:
        """The slot with `added` more arrivals and these guards moved on, if nobody wrote it since it was read.

        Raises ConditionFailed otherwise. Guards no redelivery can challenge any more are dropped.
        """
        guards = {
            name: value
            for name, value in read.guards.items()
            if name not in expired_guards(read.guards, now, keep=guards_written)
        }
        guards.update(guards_written)
        key = part.key
        item = {
            **slot_item_key(part),
            "item_type": SLOT_ITEM_TYPE,
            "brand_id": key.brand_id,
            "channel": key.channel,
            "slot": key.slot,
            "n": read.count + added,
            "rev": read.revision + 1,
            "expires_at": int((now + SLOT_RETENTION).timestamp()),
            **guards,
        }
        if read.revision == 0:
            written = put_if(self._table, item, "attribute_not_exists(pk)")
        else:
            written = put_if(self._table, item, "#rev = :rev", {":rev": read.revision}, {"#rev": "rev"})
        if not written:
            raise ConditionFailed("slot written meanwhile")

    # Slots: read by the sweeper.

    def arrivals(self, brand_id: str, first_slot: datetime, last_slot: datetime) -> dict[str, dict[datetime, int]]:
        """Arrivals per channel and slot start, for the slots from first to last (both included): one Query, its
        shards summed."""
        items = query_items(
            self._table,
            KeyConditionExpression=Key("pk").eq(surge_pk(brand_id))
            & Key("sk").between(f"S#{slot_label(first_slot)}", f"S#{slot_label(last_slot)}#{_AFTER_CHANNELS}"),
            ProjectionExpression="sk, n",
        )
        counts: dict[str, dict[datetime, int]] = defaultdict(lambda: defaultdict(int))
        for item in items:
            _, label, channel, _shard = str(item["sk"]).split("#", 3)
            counts[channel][slot_from_label(label)] += int(item.get("n", 0))
        return {channel: dict(slots) for channel, slots in counts.items()}

    def hour_arrivals(self, brand_id: str, hour: datetime) -> dict[str, int]:
        """Arrivals per channel in one UTC hour (its twelve slots): one Query."""
        by_slot = self.arrivals(brand_id, hour, hour + timedelta(hours=1) - SLOT)
        return {channel: sum(slots.values()) for channel, slots in by_slot.items()}

    # Episodes: opened and closed by the sweeper, read by the API.

    def open_episodes(self, brand_id: str) -> dict[str, OpenEpisode]:
        """The episode open on each channel (one Query of at most one item per channel)."""
        items = query_items(
            self._table,
            KeyConditionExpression=Key("pk").eq(surge_pk(brand_id)) & Key("sk").begins_with("OPEN#"),
            ConsistentRead=True,
        )
        opened = [OpenEpisode(_episode_of(item), bool(item.get("alerted"))) for item in items]
        return {open_episode.episode.channel: open_episode for open_episode in opened}

    def claim_opening(self, episode: SurgeEpisode) -> bool:
        """Mark the episode open on its channel; False when one is open there already (nothing written)."""
        return put_if(
            self._table, _episode_item(episode, OPEN_ITEM_TYPE, _open_sk(episode.channel)), "attribute_not_exists(pk)"
        )

    def mark_alerted(self, episode: SurgeEpisode) -> None:
        """The opening's alert is in the outbox: later sweeps need not record it again."""
        try:
            self._table.update_item(
                Key={"pk": surge_pk(episode.brand_id), "sk": _open_sk(episode.channel)},
                UpdateExpression="SET alerted = :yes",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeValues={":yes": True},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise translate(error) from error

    def save_episode(self, episode: SurgeEpisode) -> None:
        """Write the episode's own item (opening it, or closing it: the same key either way)."""
        try:
            self._table.put_item(Item=_episode_item(episode, EPISODE_ITEM_TYPE, _episode_sk(episode)))
        except ClientError as error:
            raise translate(error) from error

    def raise_peak(self, episode: SurgeEpisode, peak: int) -> None:
        """Keep the most arrivals seen in one slot (only ever raised: overlapping sweeps cannot lower it)."""
        for sort_key in (_episode_sk(episode), _open_sk(episode.channel)):
            try:
                self._table.update_item(
                    Key={"pk": surge_pk(episode.brand_id), "sk": sort_key},
                    UpdateExpression="SET peak_arrivals = :peak",
                    ConditionExpression="attribute_exists(pk) AND peak_arrivals < :peak",
                    ExpressionAttributeValues={":peak": peak},
                )
            except ClientError as error:
                if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                    raise translate(error) from error

    def release_opening(self, episode: SurgeEpisode) -> None:
        """The episode closed: its channel may open another one."""
        try:
            self._table.delete_item(
                Key={"pk": surge_pk(episode.brand_id), "sk": _open_sk(episode.channel)},
                ConditionExpression="opened_slot = :opened",
                ExpressionAttributeValues={":opened": slot_label(episode.opened_slot)},
            )
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") != "ConditionalCheckFailedException":
                raise translate(error) from error

    def episodes(
        self, brand_id: str, since: datetime, until: datetime, limit: int, channel: str | None = None
    ) -> list[SurgeEpisode]:
        """Episodes opened in [since, until) (on one channel), newest first, at most `limit`.

        One Query over the window's key range: what it reads is bounded by the window (an episode lasts at
        least 20 minutes on each channel), and it stops once `limit` are found.
        """
        query: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(surge_pk(brand_id))
            & Key("sk").between(f"E#{slot_label(since)}", f"E#{slot_label(until)}#{_AFTER_CHANNELS}"),
            "ScanIndexForward": False,
        }
        if channel is not None:
            query["FilterExpression"] = Attr("channel").eq(channel)
        found: list[SurgeEpisode] = []
        for item in query_items(self._table, **query):
            episode = _episode_of(item)
            if since <= episode.opened_slot < until:
                found.append(episode)
            if len(found) >= limit:
                break
        return found
