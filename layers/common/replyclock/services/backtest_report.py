"""`replyclock replay --report FILE`: the backtest as one self-contained HTML file.

Per brand: the summary figures (as GET /metrics/summary answers them), the first-response distribution
(as GET /metrics/distribution) with the SLA target marked, and SLA compliance by hour of the week (UTC).
Everything is inline (style, the dashboard's own chart code, the data as JSON): the file opens from disk
in a browser with no server and no network, and its Content-Security-Policy forbids any request.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from replyclock.logic import metrics
from replyclock.logic.aggregation import BucketKey, BucketTotals
from replyclock.models.domain import Clock
from replyclock.services.backtesting import BacktestOutcome, as_stored

DASHBOARD = Path(metrics.__file__).resolve().parent.parent / "dashboard"
DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def brand_report(buckets: list[tuple[BucketKey, BucketTotals]], summary: dict[str, Any]) -> dict[str, Any]:
    """One brand's figures: its summary, distribution bands and a 7 x 24 grid of compliance (or None)."""
    histogram = metrics.first_response_histogram(buckets, Clock.CALENDAR)
    by_hour_of_week: dict[tuple[int, int], list[tuple[BucketKey, BucketTotals]]] = defaultdict(list)
    for key, totals in buckets:
        by_hour_of_week[(key.starts_at.weekday(), key.starts_at.hour)].append((key, totals))
    heat = [
        [metrics.summarize(by_hour_of_week.get((day, hour), []), Clock.CALENDAR).sla.compliance for hour in range(24)]
        for day in range(7)
    ]
    return {
        "summary": summary,
        "bands": [band.model_dump(mode="json") for band in metrics.distribution(histogram)],
        "heat": heat,
    }


def report_data(outcome: BacktestOutcome, sla_seconds: int, source: str) -> dict[str, Any]:
    window = outcome.facts.window
    by_brand: dict[str, list[tuple[BucketKey, BucketTotals]]] = defaultdict(list)
    for key, totals in sorted(outcome.buckets.items()):
        if window.start <= key.starts_at < window.end:
            by_brand[key.brand_id].append((key, as_stored(totals)))
    brands = {
        brand_id: brand_report(by_brand.get(brand_id, []), summary.model_dump(mode="json", by_alias=True))
        for brand_id, summary in outcome.result.summaries.items()
    }
    return {
        "source": source,
        "sla_seconds": sla_seconds,
        "posts": outcome.facts.posts,
        "rejected": outcome.facts.rejected,
        "window": {"from": window.start.isoformat(), "to": window.end.isoformat()},
        "generated_at": datetime.now(UTC).replace(microsecond=0).isoformat(),
        "brands": brands,
    }


def _inline_json(value: Any) -> str:
    # Inside <script>, "</" could end the element: escape it (and <!-- ) the JSON way.
    return json.dumps(value, sort_keys=True).replace("<", "\\u003c")


def _digest(code: str) -> str:
    return base64.b64encode(hashlib.sha256(code.encode("utf-8")).digest()).decode("ascii")


def render(data: dict[str, Any]) -> str:
    charts = (DASHBOARD / "charts.js").read_text(encoding="utf-8")
    style = (DASHBOARD / "report.css").read_text(encoding="utf-8")
    script = (DASHBOARD / "report.js").read_text(encoding="utf-8")
    # Only this file's own inline scripts and style run (by hash); nothing can be fetched.
    scripts = " ".join(f"'sha256-{_digest(code)}'" for code in (charts, script))
    policy = f"default-src 'none'; script-src {scripts}; style-src 'sha256-{_digest(style)}'; img-src data:"
    title = f"ReplyClock backtest: {data['source']}"
    return f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{policy}">
<title>{html.escape(title)}</title>
<link rel="icon" href="data:,">
<style>{style}</style>
</head>
<body>
<header><h1>{html.escape(title)}</h1><p id="meta"></p>
<nav id="brands" aria-label="Brands"></nav></header>
<main id="report"></main>
<script type="application/json" id="data">{_inline_json(data)}</script>
<script>{charts}</script>
<script>{script}</script>
</body>
</html>
"""


def write_report(path: Path, outcome: BacktestOutcome, sla_seconds: int, source: str) -> Path:
    path.write_text(render(report_data(outcome, sla_seconds, source)), encoding="utf-8")
    return path
