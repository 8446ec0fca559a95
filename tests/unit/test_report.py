"""The backtest report is one self-contained file: no URL of another origin, scripts and style allowed by hash."""

from __future__ import annotations

import base64
import hashlib
import json
import re
from pathlib import Path

from devtools import demo
from devtools.cli import main

# Any absolute URL or protocol-relative reference; the SVG namespace is a name, not a request.
EXTERNAL = re.compile(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def sha256(text: str) -> str:
    return base64.b64encode(hashlib.sha256(text.encode()).digest()).decode()


def test_replay_writes_a_self_contained_report(tmp_path: Path) -> None:
    export = demo.generate().write_jsonl(tmp_path / "demo.jsonl")
    report = tmp_path / "report.html"

    assert main(["replay", str(export), "--sla-seconds", "900", "--report", str(report)]) == 0

    page = report.read_text(encoding="utf-8")
    assert not EXTERNAL.findall(page)
    assert not re.search(r"<(?:script|link|img)[^>]*\b(?:src|href)=\"(?!data:)", page)
    policy = re.search(r'http-equiv="Content-Security-Policy" content="([^"]+)"', page)
    assert policy and "default-src 'none'" in policy.group(1)
    for code in re.findall(r"<script>(.*?)</script>", page, re.DOTALL) + re.findall(
        r"<style>(.*?)</style>", page, re.DOTALL
    ):
        assert f"'sha256-{sha256(code)}'" in policy.group(1)
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page, re.DOTALL).group(1))
    assert data["sla_seconds"] == 900 and set(data["brands"]) == {"acme", "northwind", "globex"}
    for brand in data["brands"].values():
        assert len(brand["heat"]) == 7 and all(len(row) == 24 for row in brand["heat"])
        assert sum(band["count"] for band in brand["bands"]) == brand["summary"]["responded"]
