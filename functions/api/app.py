"""api: the HTTP API (API Gateway HTTP API, payload 2.0); routes live in replyclock.api."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.utilities.typing import LambdaContext

from replyclock.api import brands, conversations, dashboard, eta, health, metrics, sources, surges
from replyclock.api.access import authorise
from replyclock.api.docs import enable_docs
from replyclock.api.errors import accept_json_bodies_only, bounded_json_loads, register_error_handlers
from replyclock.observability import capture_lambda_handler, logger

app = APIGatewayHttpResolver(enable_validation=True, json_body_deserializer=bounded_json_loads)
accept_json_bodies_only(app)
# Per-brand authorisation before any route runs (replyclock.api.access).
app.use(middlewares=[authorise])
for module in (metrics, conversations, brands, eta, sources, surges, health, dashboard):
    app.include_router(module.router)
register_error_handlers(app)
enable_docs(app)


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    return app.resolve(event, context)
