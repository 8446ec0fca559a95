"""One factory for the routers of replyclock.api."""

from __future__ import annotations

from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter


def new_router() -> APIGatewayHttpRouter:
    # Powertools' Router.__init__ carries no annotations; this keeps the one ignore in one place.
    return APIGatewayHttpRouter()  # type: ignore[no-untyped-call]
