"""Who may read which brand: per-brand authorisation of every route that answers with brand data.

API Gateway authenticates (a JWT authorizer, or IAM SigV4); this decides what the caller may see:
- JWT: a token carrying the admin scope (AdminScope, `replyclock/admin` by default) reads and writes
  everything; any other token reads only the brands its brands claim (BrandsClaim, `replyclock_brands`
  by default) names, as a JSON-ish list or a comma- or space-separated string, and writes nothing.
- IAM: the caller's IAM policy decides, by route: API Gateway checks execute-api:Invoke on
  `<api arn>/$default/<METHOD>/<path>` before the function runs (docs/api.md, "Authorisation", shows
  a reader's and a brand's policy). The function then lets every IAM caller through.
- No authorizer: only the routes PublicDocs opens, and the local stack (`make run`), reach the function
  without one: nothing to restrict there.
A brand the caller may not read is a 403 whether it exists or not, so existence does not leak.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.middlewares import NextMiddleware

from replyclock.api.errors import Forbidden
from replyclock.settings import get_settings

T = TypeVar("T")
_WRITES = {"PUT", "POST", "PATCH", "DELETE"}
_BRAND_PATH = re.compile(r"^/brands/([^/]+)(?:/|$)")
_CLAIM_SEPARATORS = re.compile(r"[\s,]+")


@dataclass(frozen=True)
class Access:
    """What the current request's caller may do. brands None: every brand."""

    brands: frozenset[str] | None = None
    may_write: bool = True

    @property
    def everything(self) -> bool:
        return self.brands is None

    def may_read(self, brand_id: str | None) -> bool:
        """Whether the caller may see data of this brand (None: data of no brand, e.g. a source without one)."""
        if self.brands is None:
            return True
        return brand_id is not None and brand_id in self.brands

    def require_read(self, brand_id: str) -> None:
        if not self.may_read(brand_id):
            raise Forbidden(f"this caller may not read brand {brand_id!r}", "brand")

    def readable(self, items: Iterable[T], brand_of: Callable[[T], str | None]) -> list[T]:
        return [item for item in items if self.may_read(brand_of(item))]


EVERYTHING = Access()
_current: ContextVar[Access] = ContextVar("replyclock_access", default=EVERYTHING)


def current_access() -> Access:
    return _current.get()


def brands_in_claim(value: Any) -> frozenset[str]:
    """A claim's brand ids: a list, or a string as API Gateway passes claims ("[acme globex]", "acme,globex")."""
    if isinstance(value, list | tuple):
        return frozenset(str(item).strip() for item in value if str(item).strip())
    text = str(value or "").strip().removeprefix("[").removesuffix("]")
    return frozenset(part.strip("\"'") for part in _CLAIM_SEPARATORS.split(text) if part.strip("\"'"))


def access_of(request_context: Mapping[str, Any], *, admin_scope: str, brands_claim: str) -> Access:
    authorizer = request_context.get("authorizer") or {}
    jwt = authorizer.get("jwt") if isinstance(authorizer, Mapping) else None
    if not isinstance(jwt, Mapping):
        # IAM (API Gateway enforced the caller's policy for this route) or no authorizer (public or local).
        return EVERYTHING
    claims = jwt.get("claims") or {}
    scopes = set(jwt.get("scopes") or []) | set(str(claims.get("scope", "")).split())
    if admin_scope in scopes:
        return EVERYTHING
    return Access(brands=brands_in_claim(claims.get(brands_claim)), may_write=False)


def authorise(app: APIGatewayHttpResolver, next_middleware: NextMiddleware) -> Response[Any]:
    """Global middleware: decides the caller's access, refuses what it may not do before the route runs.

    Routes that list or show several brands' data filter it with current_access().
    """
    settings = get_settings()
    event = app.current_event
    access = access_of(
        event.raw_event.get("requestContext") or {},
        admin_scope=settings.admin_scope,
        brands_claim=settings.brands_claim,
    )
    token = _current.set(access)
    try:
        if event.http_method.upper() in _WRITES and not access.may_write:
            raise Forbidden("writes need the admin scope")
        brand = (event.query_string_parameters or {}).get("brand")
        if brand is not None:
            access.require_read(brand)
        in_path = _BRAND_PATH.match(event.path)
        if in_path:
            access.require_read(unquote(in_path.group(1)))
        return next_middleware(app)
    finally:
        _current.reset(token)
