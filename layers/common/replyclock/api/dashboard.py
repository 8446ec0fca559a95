"""GET /dashboard: one page over the API (replyclock/dashboard/), and its scripts and style sheet.

The page is static: it holds no data, and reads the API from the browser with the same auth as any
client (a bearer token when the stack uses JWTs). Its assets ship in the layer, so it works offline
and loads nothing from another origin; its Content-Security-Policy forbids that too. Not in the
OpenAPI document (like /docs): it is a page for people, not part of the JSON contract.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from aws_lambda_powertools.event_handler import Response

from replyclock.api.routing import new_router

router = new_router()

DASHBOARD_PATH = "/dashboard"
FOLDER = Path(__file__).resolve().parent.parent / "dashboard"
ASSETS = {
    "dashboard.js": "text/javascript; charset=utf-8",
    "charts.js": "text/javascript; charset=utf-8",
    "dashboard.css": "text/css; charset=utf-8",
}
# Everything from this origin only; no inline script or style, no frames.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


@cache
def asset(name: str) -> str:
    return (FOLDER / name).read_text(encoding="utf-8")


def _page(name: str, content_type: str) -> Response[str]:
    return Response(
        status_code=200,
        content_type=content_type,
        body=asset(name),
        headers={
            "Content-Security-Policy": CONTENT_SECURITY_POLICY,
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-cache",
            "Referrer-Policy": "no-referrer",
        },
    )


@router.get(DASHBOARD_PATH, include_in_schema=False)
def get_dashboard() -> Response[str]:
    return _page("dashboard.html", "text/html; charset=utf-8")


def _serve(name: str, content_type: str) -> None:
    @router.get(f"{DASHBOARD_PATH}/{name}", include_in_schema=False)
    def get_asset() -> Response[str]:
        return _page(name, content_type)


for _name, _type in ASSETS.items():
    _serve(_name, _type)
