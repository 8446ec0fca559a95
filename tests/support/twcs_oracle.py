"""An exact expectation computed from a twcs CSV alone, with no project code: the real-data tests' oracle."""

from __future__ import annotations

import csv
import math
import re
from collections import defaultdict
from datetime import datetime
from pathlib import Path

DATASET = Path(__file__).resolve().parents[3] / "shared" / "datasets" / "twcs_head5000.csv"


def write_head(rows: int, path: Path, dataset: Path = DATASET) -> Path:
    """The dataset's header and first `rows` rows, written to `path` (a parent cut off stands as a root)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with dataset.open(newline="", encoding="utf-8") as source, path.open("w", newline="", encoding="utf-8") as sink:
        csv.writer(sink, lineterminator="\n").writerows(
            row for _, row in zip(range(rows + 1), csv.reader(source), strict=False)
        )
    return path


def exact_first_waits(path: Path) -> dict[str, list[float | None]]:
    """Per brand, the latency of every first wait (None while unanswered), computed from the CSV alone.

    The wait semantics of ARCHITECTURE.md, re-derived independently of replyclock: a wait is per
    (conversation, brand, customer); it starts at the customer's first post addressed to the brand
    after the brand last answered that customer, and ends at the brand's next post that answers that
    customer. Only the first wait of each (conversation, brand, customer) is returned (first response).
    """
    with path.open(newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    by_id = {row["tweet_id"]: row for row in rows}
    parent = {row["tweet_id"]: (row["in_response_to_tweet_id"] or None) for row in rows}
    effective = _effective_times(by_id, parent)
    threads: dict[str, list[dict[str, str]]] = defaultdict(list)
    for row in rows:
        threads[_root(row["tweet_id"], parent)].append(row)
    brands = sorted({row["author_id"] for row in rows if row["inbound"] == "False"})
    customers = {row["author_id"].lower(): row["author_id"] for row in rows if row["inbound"] == "True"}
    latencies: dict[str, list[float | None]] = defaultdict(list)
    for thread in threads.values():
        thread.sort(key=lambda row: (effective[row["tweet_id"]], int(row["tweet_id"])))
        for brand in brands:
            latencies[brand].extend(_first_waits(thread, brand, by_id, customers, effective))
    return {brand: waits for brand, waits in latencies.items() if waits}


def _root(tweet_id: str, parent: dict[str, str | None]) -> str:
    """The conversation: the root of the in_response_to chain; a parent missing from the file stands as the root."""
    seen = set()
    while parent.get(tweet_id) is not None and tweet_id not in seen:
        seen.add(tweet_id)
        up = parent[tweet_id]
        assert up is not None
        if up not in parent:
            return up
        tweet_id = up
    return tweet_id


def _effective_times(by_id: dict[str, dict[str, str]], parent: dict[str, str | None]) -> dict[str, datetime]:
    """A post's effective time: the later of its own time and its parent's effective time (parent in the file)."""
    effective: dict[str, datetime] = {}
    for tweet_id in by_id:
        chain: list[str] = []
        while tweet_id not in effective and tweet_id not in chain:
            chain.append(tweet_id)
            up = parent[tweet_id]
            if up is None or up not in by_id:
                break
            tweet_id = up
        for link in reversed(chain):
            own = _time(by_id[link])
            up = parent[link]
            effective[link] = max(own, effective[up]) if up is not None and up in effective else own
    return effective


def _first_waits(
    thread: list[dict[str, str]],
    brand: str,
    by_id: dict[str, dict[str, str]],
    customers: dict[str, str],
    effective: dict[str, datetime],
) -> list[float | None]:
    """The brand's first waits in one conversation (posts in order), one per customer who addressed it."""
    mention = re.compile(rf"(?<![\w@])@{re.escape(brand)}\b", re.IGNORECASE)
    posted = False  # the brand has posted earlier in the conversation
    waiting: dict[str, tuple[dict[str, str], int | None]] = {}  # customer -> (start post, index of a first wait)
    opened: set[str] = set()  # customers who already had a wait for the brand here
    latencies: list[float | None] = []
    for row in thread:
        replied = by_id.get(row["in_response_to_tweet_id"])
        if row["inbound"] == "True":
            customer = row["author_id"]
            addressed = posted or (replied is not None and replied["author_id"] == brand) or mention.search(row["text"])
            if addressed and customer not in waiting:
                first = customer not in opened
                opened.add(customer)
                waiting[customer] = (row, len(latencies) if first else None)
                if first:
                    latencies.append(None)
        elif row["author_id"] == brand:
            posted = True
            # Handles are all \w+ here, so a token after "@" equals a handle exactly when
            # (?<![\w@])@handle\b matches; a mention of a customer from another conversation still counts.
            handles = {token.lower() for token in _MENTIONS.findall(row["text"])}
            answered = {customers[handle] for handle in handles & customers.keys()}
            if replied is not None and replied["inbound"] == "True":
                answered.add(replied["author_id"])
            for customer in answered or set(waiting):  # neither: it answers everyone waiting
                if customer not in waiting:
                    continue
                start, index = waiting.pop(customer)
                if index is None:
                    continue
                # Latency on created_at; it equals the effective-time difference on these files (no reply is
                # clocked before its parent); fail loudly if a dataset ever makes the two clocks disagree.
                assert (effective[start["tweet_id"]], effective[row["tweet_id"]]) == (_time(start), _time(row))
                latencies[index] = (_time(row) - _time(start)).total_seconds()
    return latencies


_MENTIONS = re.compile(r"(?<![\w@])@(\w+)")


def _time(row: dict[str, str]) -> datetime:
    return datetime.strptime(row["created_at"], "%a %b %d %H:%M:%S %z %Y")


def nearest_rank(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(q * len(ordered))) - 1]
