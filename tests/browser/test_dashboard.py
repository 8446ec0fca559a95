"""The dashboard in headless Chromium against the local stack, on the demo dataset.

One stack and one browser for the module; each view is screenshotted under the tests' output folder.
The page must load with no console error and no request leaving 127.0.0.1, show the API's own numbers,
and follow the brand picker (driven by keyboard) in every panel.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devtools import demo
from devtools.localstack.stack import LocalStack, StackOptions, configure
from replyclock.models.sources import Source, SourceKind
from tests.browser.conftest import Watched

pytestmark = pytest.mark.slow

PRIORITIES = ("urgent", "high", "normal", "low")


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = tmp_path_factory.mktemp("dashboard-stack")
    dataset = demo.generate()
    export = dataset.write_jsonl(folder / "demo.jsonl")
    with LocalStack(StackOptions(api_port=0, log_dir=folder / "logs")) as local:
        configure(local, dataset.brands, [Source(id="demo", kind=SourceKind.REPLAY, replay_uri=str(export))])
        local.ingest("demo")
        local.wait_until_drained(timeout=300)
        yield local


def api(stack: LocalStack, path: str, **query: str) -> Any:
    status, body = stack.get_json(path, query)
    assert status == 200, (path, query, body)
    return body


# Each shown figure or cell by its name: {data-metric or data-cell: data-value}.
SHOWN = "nodes => Object.fromEntries(nodes.map(n => [n.dataset.metric || n.dataset.cell, n.dataset.value]))"


def shown(page: Any, selector: str) -> dict[str, str]:
    values: dict[str, str] = page.eval_on_selector_all(selector, SHOWN)
    return values


def as_shown(value: Any) -> str:
    """A figure as the page holds it in data-value: JavaScript's number text (1.0 is "1"), "" for null."""
    if value is None:
        return ""
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def assert_panels_match_the_api(page: Any, stack: LocalStack, brand: str) -> None:
    summary = api(stack, "/metrics/summary", brand=brand)
    figures = shown(page, "#figures [data-metric]")
    assert figures["mentions"] == as_shown(summary["mentions"])
    assert figures["responded"] == as_shown(summary["responded"])
    assert figures["response_rate"] == as_shown(summary["response_rate"])
    assert figures["compliance"] == as_shown(summary["sla"]["compliance"])
    assert figures["first_p50"] == as_shown(summary["first_response_seconds"]["p50"])
    assert figures["first_p90"] == as_shown(summary["first_response_seconds"]["p90"])
    assert figures["next_p50"] == as_shown(summary["next_response_seconds"]["p50"])

    distribution = api(stack, "/metrics/distribution", brand=brand)
    counts = page.get_attribute("#chart-distribution", "data-counts")
    assert counts == ",".join(str(band["count"]) for band in distribution["bands"])

    items, cursor = [], None
    for _ in range(5):  # as the page: up to 5 pages of 200
        answer = api(stack, "/conversations", brand=brand, limit="200", **({"cursor": cursor} if cursor else {}))
        items, cursor = items + answer["items"], answer["next_cursor"]
        if not cursor:
            break
    open_waits = [item["waits"][-1] for item in items if item["waits"] and item["waits"][-1]["ended_at"] is None]
    now = shown(page, "#open-counts [data-metric]")
    assert now["open"] == str(len(open_waits))
    for status in ("breached", "at_risk", "pending"):
        assert now[f"open_{status}"] == str(sum(wait["status"] == status for wait in open_waits))
    assert page.locator("#open-waits tbody tr[data-conversation]").count() == min(len(open_waits), 50)

    channels = sorted(api(stack, f"/brands/{urllib.parse.quote(brand)}")["handles"])
    cells = shown(page, "#channel-priority [data-cell]")
    assert len(cells) == len(channels) * len(PRIORITIES)
    for channel in channels:
        for priority in PRIORITIES:
            expected = api(stack, "/metrics/summary", brand=brand, channel=channel, priority=priority)["mentions"]
            assert cells[f"{channel}/{priority}"] == str(expected), (channel, priority)

    points = api(stack, "/metrics/timeseries", brand=brand, interval="hour")["points"]
    assert page.get_attribute("#trends", "data-points") == str(len(points))
    assert page.locator("#chart-first svg path").count() == 2


def loaded(watched: Watched, url: str, brand: str | None = None) -> Any:
    page = watched.page
    page.goto(url)
    selector = f'body[data-brand="{brand}"]' if brand else "body[data-brand]"
    page.wait_for_selector(selector, timeout=30_000)
    return page


def assert_clean(watched: Watched) -> None:
    assert not watched.errors, watched.errors
    outside = [url for url in watched.requests if urllib.parse.urlsplit(url).hostname != "127.0.0.1"]
    assert not outside, outside


def save(page: Any, folder: Path, name: str) -> Path:
    path = folder / name
    page.screenshot(path=str(path), full_page=True)
    print(f"screenshot: {path}")
    return path


def test_the_dashboard_shows_the_api_s_numbers_and_follows_the_brand_picker(
    stack: LocalStack, watched: Watched, screenshots: Path
) -> None:
    page = loaded(watched, f"{stack.api_url}/dashboard#acme", "acme")
    paint = page.evaluate(
        "() => (performance.getEntriesByName('first-contentful-paint')[0] || {startTime: null}).startTime"
    )
    weight = page.evaluate(
        "() => performance.getEntriesByType('resource').concat(performance.getEntriesByType('navigation'))"
        ".filter(e => e.initiatorType !== 'fetch').reduce((sum, e) => sum + e.decodedBodySize, 0)"
    )
    print(f"dashboard: first contentful paint {paint:.0f} ms, page weight {weight} bytes (HTML, CSS, JS)")
    measured = {"first_contentful_paint_ms": round(paint), "page_weight_bytes": weight, "bytes_received": watched.bytes}
    (screenshots / "dashboard-measurements.json").write_text(json.dumps(measured, indent=2) + "\n")
    assert weight < 60_000
    assert_panels_match_the_api(page, stack, "acme")
    save(page, screenshots, "dashboard-wide-acme.png")

    # By keyboard: focus the picker, choose the next brand.
    page.focus("#brand")
    page.keyboard.press("ArrowDown")
    picked = page.eval_on_selector("#brand", "select => select.value")
    assert picked != "acme"
    page.wait_for_selector(f'body[data-brand="{picked}"]', timeout=30_000)
    page.wait_for_function("() => /updated/.test(document.getElementById('status').textContent)")
    assert_panels_match_the_api(page, stack, picked)
    save(page, screenshots, f"dashboard-wide-{picked}.png")

    page.check("input[name=interval][value=day]")
    page.wait_for_function("() => /updated/.test(document.getElementById('status').textContent)")
    save(page, screenshots, f"dashboard-wide-{picked}-days.png")
    assert_clean(watched)


def test_the_dashboard_fits_a_360_px_screen(stack: LocalStack, watched: Watched, screenshots: Path) -> None:
    watched.page.set_viewport_size({"width": 360, "height": 780})
    page = loaded(watched, f"{stack.api_url}/dashboard#northwind", "northwind")

    assert page.evaluate("() => document.documentElement.scrollWidth") <= 360
    save(page, screenshots, "dashboard-360px-northwind.png")
    assert_clean(watched)


def test_every_control_is_reached_by_tab(stack: LocalStack, watched: Watched) -> None:
    page = loaded(watched, f"{stack.api_url}/dashboard")
    reached = []
    for _ in range(12):
        page.keyboard.press("Tab")
        reached.append(page.evaluate("() => document.activeElement.id || document.activeElement.name"))

    assert {"brand", "interval", "refresh"} <= set(reached), reached
    assert_clean(watched)
