"""Serving DynamoDB Query pages at the wire, for benchmarks of the API's reads.

moto needs ~2.7 ms per item to serialise a Query response, which says nothing about
DynamoDB, so the API benchmarks answer the bucket Queries themselves: pre-built items,
paged at 1 MB in DynamoDB's JSON exactly as DynamoDB sends them, through botocore's
before-send hook. The handler still does all it does on Lambda (request signing,
response parsing, type decoding, merging, percentiles, the response model); only
DynamoDB's own service time is left out, and it is estimated per page.
"""

from __future__ import annotations

import bisect
import json
import math
import os
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
TABLE_NAME = "replyclock-bench"
# The API benchmarks' "now" (on the hour) and the channels their brand is busy on.
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
CHANNELS = ("x", "mastodon", "bluesky", "reddit", "threads", "facebook", "instagram", "tiktok", "youtube", "linkedin")
# DynamoDB pages a Query at 1 MB and charges 0.5 read unit per started 4 KB of a page (eventually consistent).
PAGE_BYTES = 1024 * 1024
READ_UNIT_BYTES = 4096


def prepare_environment() -> None:
    # Before boto3 or Powertools are imported: fake credentials, no tracing, quiet logs.
    os.environ.update(
        {
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_SECURITY_TOKEN": "testing",
            "AWS_SESSION_TOKEN": "testing",
            "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "AWS_ACCOUNT_ID_ENDPOINT_MODE": "disabled",
            "TABLE_NAME": TABLE_NAME,
            "POWERTOOLS_TRACE_DISABLED": "true",
            "POWERTOOLS_LOG_LEVEL": "ERROR",
            "POWERTOOLS_SERVICE_NAME": "replyclock",
        }
    )
    os.environ.pop("AWS_PROFILE", None)
    for path in (REPO_ROOT, REPO_ROOT / "layers" / "common"):
        if str(path) not in sys.path:
            sys.path.insert(0, str(path))


def dynamodb_size(value: Any) -> int:
    """An attribute value's size as DynamoDB counts it (strings in UTF-8, numbers ~1 byte per 2 digits + 1)."""
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bool) or value is None:
        return 1
    if isinstance(value, int | Decimal):
        digits = len(str(abs(value)).replace(".", "").lstrip("0")) or 1
        return math.ceil(digits / 2) + 1
    if isinstance(value, dict):
        return 3 + sum(len(key.encode()) + dynamodb_size(item) + 1 for key, item in value.items())
    if isinstance(value, list):
        return 3 + sum(dynamodb_size(item) + 1 for item in value)
    raise TypeError(f"no DynamoDB size for {type(value).__name__}")


def item_size(item: dict[str, Any]) -> int:
    return sum(len(name.encode()) + dynamodb_size(value) for name, value in item.items())


def read_units(page_bytes: int) -> float:
    """What DynamoDB charges for one Query page: 0.5 read unit per started 4 KB (eventually consistent)."""
    return math.ceil(page_bytes / READ_UNIT_BYTES) / 2


def summary_event(days: int) -> dict[str, Any]:
    """events/api_metrics_summary.json, asking for brand acme's last `days` days up to NOW."""
    event: dict[str, Any] = json.loads((REPO_ROOT / "events" / "api_metrics_summary.json").read_text())
    start = (NOW - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    end = NOW.strftime("%Y-%m-%dT%H:%M:%SZ")
    event["queryStringParameters"] = {"brand": "acme", "from": start, "to": end}
    event["rawQueryString"] = f"brand=acme&from={start}&to={end}"
    return event


def median_seconds(action: Callable[[], Any], runs: int) -> float:
    timings = []
    for _ in range(runs):
        started = time.perf_counter()
        action()
        timings.append(time.perf_counter() - started)
    return statistics.median(timings)


@dataclass
class Reads:
    """What one request's Queries read, as DynamoDB counts and bills it."""

    queries: int = 0
    pages: int = 0
    items: int = 0
    megabytes: float = 0.0
    units: float = 0.0


class BucketPages:
    """Answers the bucket Query at the wire, paged as DynamoDB pages it, from pre-built items.

    Registered first on the client's before-send hook, it serves Query requests on the buckets'
    partition and leaves everything else to moto. Page bodies are kept once rendered, and an
    untimed run renders them, so timed runs hold no serialisation that DynamoDB would have done.
    """

    def __init__(self, items: list[dict[str, Any]]) -> None:
        from boto3.dynamodb.types import TypeSerializer

        serializer = TypeSerializer()
        self.partition = str(items[0]["pk"])
        ordered = sorted(items, key=lambda item: str(item["sk"]))
        self._keys = [str(item["sk"]) for item in ordered]
        self._wire = [
            json.dumps({name: serializer.serialize(value) for name, value in item.items()}) for item in ordered
        ]
        self._sizes = [item_size(item) for item in ordered]
        self._bodies: dict[tuple[str, str, str | None], tuple[bytes, int]] = {}
        self.enabled = False
        self.reset()

    def reset(self) -> None:
        self.queries_served = 0
        self.pages_served = 0
        self.items_served = 0
        self.bytes_served = 0
        self.units_served = 0.0

    def reads_per_request(self, requests: int) -> Reads:
        """What each of the last `requests` requests (since reset) read."""
        return Reads(
            queries=self.queries_served // requests,
            pages=self.pages_served // requests,
            items=self.items_served // requests,
            megabytes=self.bytes_served / requests / 1e6,
            units=self.units_served / requests,
        )

    def __call__(self, request: Any, **_: Any) -> Any:
        from botocore.awsrequest import AWSResponse
        from moto.core.botocore_stubber import MockRawResponse

        if not self.enabled:
            return None
        query = json.loads(request.body)
        values = query.get("ExpressionAttributeValues", {})
        if {"S": self.partition} not in values.values():
            return None
        low, high = sorted(str(value["S"]) for value in values.values() if value != {"S": self.partition})
        after = query.get("ExclusiveStartKey", {}).get("sk", {}).get("S")
        page = self._bodies.get((low, high, after))
        if page is None:
            page = self._bodies[(low, high, after)] = self._page(low, high, after)
        body, page_bytes = page
        self.queries_served += after is None
        self.pages_served += 1
        self.items_served += json.loads(body)["Count"]
        self.bytes_served += page_bytes
        self.units_served += read_units(page_bytes)
        response = AWSResponse(request.url, 200, {"Content-Type": "application/x-amz-json-1.0"}, MockRawResponse(body))
        # botocore calls every before-send handler and keeps the first answer; this URL makes moto's pass.
        request.url = "https://replayed.invalid/"
        return response

    def _page(self, low: str, high: str, after: str | None) -> tuple[bytes, int]:
        """The page of the Query on [low, high] that follows `after`, and its size as DynamoDB counts it."""
        position = bisect.bisect_right(self._keys, after) if after else bisect.bisect_left(self._keys, low)
        chosen: list[str] = []
        size = 0
        while position < len(self._keys) and self._keys[position] <= high:
            if chosen and size + self._sizes[position] > PAGE_BYTES:
                return self._render(chosen, self._keys[position - 1]), size
            chosen.append(self._wire[position])
            size += self._sizes[position]
            position += 1
        return self._render(chosen, None), size

    def _render(self, chosen: list[str], last: str | None) -> bytes:
        page = f'{{"Count": {len(chosen)}, "ScannedCount": {len(chosen)}, "Items": [{", ".join(chosen)}]'
        if last is not None:
            key = {"pk": {"S": self.partition}, "sk": {"S": last}}
            page += f', "LastEvaluatedKey": {json.dumps(key)}'
        return (page + "}").encode()
