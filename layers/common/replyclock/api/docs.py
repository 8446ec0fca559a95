"""The API's OpenAPI document, served at /openapi.json, and Swagger UI at /docs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer, Server, Tag

from replyclock.api.errors import MAX_BODY_BYTES

DOCS_PATH = "/docs"
OPENAPI_PATH = "/openapi.json"
API_VERSION = "1.0.0"

# Which scheme applies is the deployment's choice (template.yaml): a JWT authorizer when an issuer and
# audience are configured, else IAM (SigV4-signed requests).
OPENAPI_SETTINGS: dict[str, Any] = {
    "title": "ReplyClock API",
    "version": API_VERSION,
    "description": "How fast a brand answers the people who talk to it in public, against its SLAs. "
    "Metrics are read from hourly aggregates. Errors are JSON {message, field}. Request bodies are limited "
    f"to {MAX_BODY_BYTES} bytes.",
    "servers": [Server(url="/")],
    "tags": [
        Tag(name="metrics", description="Summaries, time series and distributions from aggregates"),
        Tag(name="conversations", description="Conversations, their posts and waits"),
        Tag(name="brands", description="Brand configuration and SLA policy history"),
        Tag(name="health", description="Ingestion health"),
    ],
    "security_schemes": {
        "jwt": HTTPBearer(bearerFormat="JWT", description="When the stack has a JWT issuer and audience."),
        "sigv4": APIKey(
            name="Authorization",
            in_=APIKeyIn.header,
            description="AWS SigV4-signed requests (IAM auth), when the stack has no JWT issuer.",
        ),
    },
    "security": [{"jwt": []}, {"sigv4": []}],
}


def enable_docs(app: APIGatewayHttpResolver) -> None:
    app.enable_swagger(path=DOCS_PATH, **OPENAPI_SETTINGS)

    @app.get(OPENAPI_PATH, include_in_schema=False)
    def openapi_document() -> Response[str]:
        return Response(
            status_code=200,
            content_type=content_types.APPLICATION_JSON,
            body=app.get_openapi_json_schema(**OPENAPI_SETTINGS),
        )
