"""GET /sources, GET/PUT/DELETE /sources/{id}: onboarding a source is one API call.

A PUT is validated before anything is stored: the kind and the fields it needs, the brand
(configured), and the credentials (named under the template's prefix, readable by this
function right now, holding the keys the network's connector reads; their values are never
returned or logged). `?dry_run=true` validates the same way, then reads what the next poll
would fetch (replyclock.services.dry_run) and stores nothing. Once stored, the ingest tick
polls the source within a minute (replyclock.services.dispatching); no template change.
DELETE removes the configuration and its poll schedule; the cursor stays, so PUTting the
same id again resumes where it stopped.
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Path, Query
from pydantic import ValidationError

from replyclock.api.access import current_access
from replyclock.api.dependencies import SettingsDependency, StoresDependency
from replyclock.api.errors import NotFound, Unprocessable, route_responses
from replyclock.api.routing import new_router
from replyclock.dal.sources import PollSchedule, SourceStore
from replyclock.models.api import DryRunReport, SourceDeleted, SourceInput, SourceList, SourcePolling, SourceResponse
from replyclock.models.sources import REQUIRED_CREDENTIALS, Source, SourceId, SourceKind
from replyclock.settings import Settings

router = new_router()

SourcePath = Annotated[SourceId, Path(description="The source's id: letters, digits, '_', '.', '-'; up to 64.")]
DryRunQuery = Annotated[
    bool,
    Query(description="Validate and report what the next poll would fetch, without storing anything."),
]


def source_out(source: Source, schedule: PollSchedule | None, report: DryRunReport | None = None) -> SourceResponse:
    polling = None
    if schedule is not None:
        polling = SourcePolling(
            next_poll_at=schedule.next_poll_at,
            last_poll_at=schedule.last_poll_at,
            last_poll_status=schedule.last_poll_status,
            last_error=schedule.last_error,
        )
    return SourceResponse(
        id=source.id,
        kind=source.kind.value,
        brand_id=source.brand_id,
        account_id=source.account_id,
        account_handle=source.account_handle,
        base_url=source.base_url,
        auth_url=source.auth_url,
        poll_every_seconds=source.poll_every_seconds,
        credentials_name=source.credentials_name,
        enabled=source.enabled,
        initial_lookback_hours=source.initial_lookback_hours,
        replay_uri=source.replay_uri,
        replay_format=source.replay_format,
        polling=polling,
        dry_run=report,
    )


def validated_source(source_id: str, body: SourceInput) -> Source:
    try:
        return Source.model_validate({"id": source_id, **body.model_dump(exclude_none=True)})
    except ValidationError as error:
        raise Unprocessable.from_validation(error) from error


def check_brand(stores: StoresDependency, source: Source) -> None:
    if source.brand_id is not None and stores.brands.get(source.brand_id) is None:
        raise Unprocessable(
            f"brand {source.brand_id!r} is not configured (PUT /brands/{source.brand_id} first)", "brand_id"
        )


def check_credentials(source: Source, settings: Settings) -> None:
    """The credentials are where ingest may read them, readable now, and hold what the connector reads."""
    name = source.credentials_name
    if name is None or source.kind is SourceKind.REPLAY:
        return
    from replyclock.dal.credentials import CredentialsError, get_credentials

    prefix = settings.credentials_parameter_path if name.startswith("/") else settings.credentials_secret_prefix
    if not name.startswith(prefix) or name == prefix:
        raise Unprocessable(
            f"credentials {name!r} must be a secret named under {settings.credentials_secret_prefix!r} or an SSM "
            f"parameter under {settings.credentials_parameter_path!r} (ingest may read nothing else)",
            "credentials_name",
        )
    try:
        credentials = get_credentials(name, fresh=True)
    except CredentialsError as error:
        raise Unprocessable(str(error), "credentials_name") from None
    missing = [key for key in REQUIRED_CREDENTIALS.get(source.kind, ()) if key not in credentials.values]
    if missing:
        raise Unprocessable(
            f"credentials {name!r} lack {', '.join(missing)} (a {source.kind.value} source reads "
            f"{', '.join(REQUIRED_CREDENTIALS[source.kind])})",
            "credentials_name",
        )


def dry_run_report(source: Source, store: SourceStore) -> DryRunReport:
    from replyclock.services.dry_run import BUDGET_SECONDS, MAX_PAGES, dry_run

    cursor = store.load_cursor(source.id).value if store.get(source.id) is not None else {}
    result = dry_run(source, cursor)
    return DryRunReport(
        status=result.status,
        pages=result.pages,
        would_store=result.would_store,
        rejected=result.rejected,
        ignored=result.ignored,
        deleted=result.deleted,
        first_post_ids=result.first_post_ids,
        newest_post_at=result.newest_post_at,
        from_stored_cursor=result.from_stored_cursor,
        message=result.message,
        budget_seconds=BUDGET_SECONDS,
        max_pages=MAX_PAGES,
    )


@router.get("/sources", summary="Every configured source", responses=route_responses(), tags=["sources"])
def list_sources(stores: StoresDependency) -> SourceList:
    store = SourceStore(stores.table_name)
    readable = current_access().readable(store.configured(), lambda found: found.source.brand_id)
    return SourceList(items=[source_out(found.source, found.schedule) for found in readable])


@router.get(
    "/sources/<source_id>",
    summary="A source's configuration and poll schedule",
    responses=route_responses(400, 404),
    tags=["sources"],
)
def get_source(source_id: SourcePath, stores: StoresDependency) -> SourceResponse:
    found = SourceStore(stores.table_name).get_configured(source_id)
    # A caller limited to some brands sees only their sources: the others do not exist for it.
    if found is None or not current_access().may_read(found.source.brand_id):
        raise NotFound(f"source {source_id!r} is not configured", "source_id")
    return source_out(found.source, found.schedule)


@router.put(
    "/sources/<source_id>",
    summary="Create or replace a source (admin)",
    description="Validates the kind and its fields, that the brand is configured, and that the named credentials "
    "are readable and hold the keys the network needs (never returned). The ingest tick polls a new source "
    "within a minute, then every `poll_every_seconds`. Answers 201 when created, 200 when replaced (the poll "
    "schedule and cursor are kept). With `dry_run=true` nothing is stored: the answer (200) carries `dry_run`, "
    "what the next poll would fetch (at most `max_pages` pages within `budget_seconds`).",
    responses={
        201: {
            "description": "Created",
            "content": {content_types.APPLICATION_JSON: {"model": SourceResponse}},
        },
        **route_responses(400, 413, 415, 422),
    },
    tags=["sources"],
)
def put_source(
    source_id: SourcePath,
    body: Annotated[SourceInput, Body(embed=False)],
    stores: StoresDependency,
    settings: SettingsDependency,
    dry_run: DryRunQuery = False,
) -> Response[SourceResponse]:
    source = validated_source(source_id, body)
    check_brand(stores, source)
    check_credentials(source, settings)
    store = SourceStore(stores.table_name)
    if dry_run:
        report = dry_run_report(source, store)
        return Response(
            status_code=HTTPStatus.OK.value,
            content_type=content_types.APPLICATION_JSON,
            body=source_out(source, None, report),
        )
    created = store.put(source)
    found = store.get_configured(source.id)
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return Response(
        status_code=status.value,
        content_type=content_types.APPLICATION_JSON,
        body=source_out(source, found.schedule if found else PollSchedule()),
    )


@router.delete(
    "/sources/<source_id>",
    summary="Remove a source (admin)",
    description="Removes the configuration and its poll schedule: no tick polls it again. Its cursor and parked "
    "items stay, so PUTting the same id again resumes where it stopped. To pause a source instead, PUT it with "
    "`enabled: false`.",
    responses=route_responses(400, 404),
    tags=["sources"],
)
def delete_source(source_id: SourcePath, stores: StoresDependency) -> SourceDeleted:
    if not SourceStore(stores.table_name).delete(source_id):
        raise NotFound(f"source {source_id!r} is not configured", "source_id")
    return SourceDeleted(id=source_id, deleted=True, cursor_kept=True)
