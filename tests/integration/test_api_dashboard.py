"""GET /dashboard serves one static page and its assets from the layer; nothing on it leaves the origin."""

from __future__ import annotations

import re

import pytest

from replyclock.api.dashboard import ASSETS, DASHBOARD_PATH
from tests.support.api import ApiClient
from tests.support.pipeline import Pipeline

# Any absolute URL or protocol-relative reference; the SVG namespace is a name, not a request.
EXTERNAL = re.compile(r"(?:https?:)?//(?!www\.w3\.org/2000/svg)[a-z0-9.-]+\.[a-z]{2,}", re.IGNORECASE)


def test_the_dashboard_is_html_with_a_strict_content_security_policy(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_docs.json", path=DASHBOARD_PATH)

    assert response.status == 200
    assert response.headers["Content-Type"] == "text/html; charset=utf-8"
    assert "<title>ReplyClock dashboard</title>" in response.body
    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'none'" in policy and "connect-src 'self'" in policy and "script-src 'self'" in policy
    for name in ASSETS:
        assert f'"dashboard/{name}"' in response.body


@pytest.mark.parametrize("name", sorted(ASSETS))
def test_each_asset_is_served_with_its_type(api: ApiClient, pipeline: Pipeline, name: str) -> None:
    response = api.call("api_docs.json", path=f"{DASHBOARD_PATH}/{name}")

    assert response.status == 200
    assert response.headers["Content-Type"] == ASSETS[name]
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.body.strip()


def test_nothing_on_the_page_names_another_origin(api: ApiClient, pipeline: Pipeline) -> None:
    for path in [DASHBOARD_PATH, *(f"{DASHBOARD_PATH}/{name}" for name in ASSETS)]:
        body = api.call("api_docs.json", path=path).body
        assert not EXTERNAL.findall(body), path
        # API calls are relative (no leading slash), so the page works under any base path.
        assert not re.search(r"""api\(\s*["']/""", body), path


def test_the_page_stays_small(api: ApiClient, pipeline: Pipeline) -> None:
    total = sum(
        len(api.call("api_docs.json", path=p).body.encode())
        for p in [DASHBOARD_PATH] + [f"{DASHBOARD_PATH}/{n}" for n in ASSETS]
    )

    assert total < 60_000, total


def test_an_unknown_asset_is_a_json_404(api: ApiClient, pipeline: Pipeline) -> None:
    response = api.call("api_docs.json", path=f"{DASHBOARD_PATH}/../template.yaml")

    assert response.status == 404
    assert response.headers["Content-Type"].startswith("application/json")


def test_the_dashboard_is_not_part_of_the_json_contract(api: ApiClient, pipeline: Pipeline) -> None:
    document = api.call("api_openapi.json").json()

    assert not [path for path in document["paths"] if path.startswith(DASHBOARD_PATH)]
