"""GET /brands, GET/PUT /brands/{id}, GET/PUT /brands/{id}/sla-policy.

A brand's configuration is one document; its SLA policies are a history of versions, one item each.
Both are served with an ETag, and changing them needs it back: PUT /brands/{id} on an existing brand
and PUT /brands/{id}/sla-policy take `If-Match: <ETag>` (428 without it, 412 when the resource changed
since it was read, so of several concurrent edits from one read exactly one succeeds and the others
learn they lost). Creating a brand needs no ETag: PUT on an absent id creates it, and
`If-None-Match: *` makes that explicit (412 if the brand exists). A policy PUT appends a version
effective from now, so it applies to waits that start after it while earlier waits keep the version
they were measured against.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header
from aws_lambda_powertools.event_handler.openapi.types import (
    OpenAPIResponse,
    OpenAPIResponseContentModel,
    OpenAPIResponseContentSchema,
    OpenAPIResponseHeader,
)
from pydantic import BaseModel, ValidationError

from replyclock.api.access import current_access
from replyclock.api.dependencies import Now, Stores, StoresDependency
from replyclock.api.errors import (
    NotFound,
    PreconditionFailed,
    PreconditionRequired,
    Unprocessable,
    route_responses,
)
from replyclock.api.parameters import BrandPath
from replyclock.api.routing import new_router
from replyclock.dal.brands import brand_document
from replyclock.dal.table import ConditionFailed
from replyclock.logic.metrics import EARLIEST, LATEST
from replyclock.models.api import (
    BrandInput,
    BrandList,
    BrandListItem,
    BrandResponse,
    SLAPolicyInput,
    SLAPolicyOut,
    SLAPolicyResponse,
)
from replyclock.models.domain import Brand, SLAPolicy

router = new_router()
IfMatch = Annotated[
    str | None,
    Header(
        max_length=2048,
        description="The ETag last read (GET); required to change an existing resource (428 without it, 412 when "
        "it no longer matches). `*` matches any existing version.",
    ),
]
IfNoneMatch = Annotated[
    str | None,
    Header(max_length=2048, description="`*`: create only (412 if the brand exists)."),
]
_ETAG_HEADER: dict[str, OpenAPIResponseHeader] = {
    "ETag": {"description": "Send it back as If-Match to change the resource.", "schema": {"type": "string"}}
}


def brand_etag(config: str, brand: Brand) -> str:
    """Changes whenever GET /brands/{id} would answer differently: the document or the policy in force."""
    digest = hashlib.sha256(f"{config}\n{brand.current_policy.version}".encode()).hexdigest()
    return f'"{digest[:32]}"'


def policy_etag(brand: Brand) -> str:
    """Policy versions are immutable and numbered: the latest version names the whole history."""
    return f'"policy-{brand.current_policy.version}"'


def _entity_tags(header: str) -> list[str]:
    return [tag.strip() for tag in header.split(",") if tag.strip()]


def check_if_match(header: str | None, current: str) -> None:
    """RFC 9110 If-Match, strong comparison: 428 without it, 412 unless it names the current ETag (or *)."""
    if header is None:
        raise PreconditionRequired(
            "this update needs If-Match with the ETag of the resource as last read (GET it first)", "If-Match"
        )
    tags = _entity_tags(header)
    if "*" not in tags and current not in tags:
        raise PreconditionFailed(
            "the resource changed since it was read (If-Match does not match its ETag): read it again", "If-Match"
        )


def with_etag(body: BaseModel, etag: str, status: HTTPStatus = HTTPStatus.OK) -> Response[Any]:
    return Response(
        status_code=status.value, content_type=content_types.APPLICATION_JSON, body=body, headers={"ETag": etag}
    )


def tagged_responses(model: type[BaseModel], *statuses: int, created: bool = False) -> dict[int, OpenAPIResponse]:
    responses = route_responses(*statuses)
    content: dict[str, OpenAPIResponseContentSchema | OpenAPIResponseContentModel] = {
        content_types.APPLICATION_JSON: {"model": model}
    }
    responses[200] = {"description": "Success", "headers": _ETAG_HEADER, "content": content}
    if created:
        responses[201] = {"description": "Created", "headers": _ETAG_HEADER, "content": content}
    return responses


def require_known_brand(stores: Stores, brand_id: str) -> None:
    """404 unless the brand is configured or measure has already seen it in data (and recorded waits for it)."""
    if stores.brands.exists(brand_id):
        return
    states, _ = stores.conversations.by_brand(brand_id, EARLIEST, LATEST, limit=1)
    if not states:
        raise NotFound(f"unknown brand {brand_id!r}", "brand")


def policy_out(policy: SLAPolicy) -> SLAPolicyOut:
    return SLAPolicyOut(
        version=policy.version,
        effective_from=policy.effective_from,
        targets=policy.targets,
        channel_targets=dict(policy.channel_targets),
        clock=policy.clock,
        at_risk_fraction=policy.at_risk_fraction,
    )


def brand_out(brand: Brand) -> BrandResponse:
    return BrandResponse(
        id=brand.id,
        name=brand.name,
        handles=brand.handles,
        calendar=brand.calendar,
        auto_reply_patterns=brand.auto_reply_patterns,
        handoff_patterns=brand.handoff_patterns,
        priority_rules=brand.priority_rules,
        sla_policy=policy_out(brand.current_policy),
    )


def policies_out(brand: Brand) -> SLAPolicyResponse:
    return SLAPolicyResponse(
        brand_id=brand.id,
        current=policy_out(brand.current_policy),
        history=[policy_out(policy) for policy in brand.sla_policies],
    )


def configured_brand(stores: Stores, brand_id: str) -> tuple[Brand, str]:
    found = stores.brands.get_with_config(brand_id)
    if found is None:
        raise NotFound(f"brand {brand_id!r} is not configured", "brand_id")
    return found


def validated_brand(fields: dict[str, Any]) -> Brand:
    try:
        return Brand.model_validate(fields)
    except ValidationError as error:
        raise Unprocessable.from_validation(error) from error


def check_handles_free(stores: Stores, brand: Brand) -> None:
    """Two brands claiming one handle would make the measuring path credit one brand's mentions to the other."""
    for other in stores.brands.all():
        if other.id == brand.id:
            continue
        for channel, handles in brand.handles.items():
            taken = set(handles) & set(other.handles.get(channel, []))
            if taken:
                raise Unprocessable(
                    f"handle {sorted(taken)[0]!r} on {channel} already belongs to brand {other.id!r}",
                    f"handles.{channel}",
                )


@router.get(
    "/brands", summary="Every configured brand the caller may read", responses=route_responses(), tags=["brands"]
)
def list_brands(stores: StoresDependency) -> BrandList:
    brands = current_access().readable(stores.brands.all(), lambda brand: brand.id)
    return BrandList(
        items=[BrandListItem(id=brand.id, name=brand.name) for brand in sorted(brands, key=lambda b: b.id)]
    )


@router.get(
    "/brands/<brand_id>",
    summary="A brand's configuration",
    description="Answers with an ETag: send it back as If-Match to PUT a change.",
    responses=tagged_responses(BrandResponse, 400, 404),
    tags=["brands"],
)
def get_brand(brand_id: BrandPath, stores: StoresDependency) -> Response[BrandResponse]:
    brand, config = configured_brand(stores, brand_id)
    return with_etag(brand_out(brand), brand_etag(config, brand))


@router.put(
    "/brands/<brand_id>",
    summary="Create or replace a brand's configuration",
    description="Replaces everything but the SLA policy history (see /brands/{id}/sla-policy); a new brand "
    "starts with the default policy, version 1. Replacing an existing brand needs `If-Match: <ETag>` (428 "
    "without it, 412 when the brand changed since it was read); creating one needs none, and `If-None-Match: *` "
    "makes sure it is a creation (412 if the brand exists). Answers 201 when the brand was created.",
    responses=tagged_responses(BrandResponse, 400, 412, 413, 415, 422, 428, created=True),
    tags=["brands"],
)
def put_brand(
    brand_id: BrandPath,
    body: Annotated[BrandInput, Body(embed=False)],
    stores: StoresDependency,
    if_match: IfMatch = None,
    if_none_match: IfNoneMatch = None,
) -> Response[BrandResponse]:
    found = stores.brands.get_with_config(brand_id)
    if found is None:
        if if_match is not None:
            raise PreconditionFailed(f"brand {brand_id!r} does not exist; create it without If-Match", "If-Match")
    else:
        if if_none_match is not None and "*" in _entity_tags(if_none_match):
            raise PreconditionFailed(f"brand {brand_id!r} exists already (If-None-Match: *)", "If-None-Match")
        check_if_match(if_match, brand_etag(found[1], found[0]))
    previous, previous_config = found if found else (None, None)
    fields: dict[str, Any] = {"id": brand_id, **body.model_dump(exclude_none=True)}
    fields["sla_policies"] = previous.sla_policies if previous else [SLAPolicy()]
    brand = validated_brand(fields)
    check_handles_free(stores, brand)
    try:
        stores.brands.put_if_unchanged(brand, previous_config)
    except ConditionFailed as error:
        lost = "was created" if previous is None else "changed"
        raise PreconditionFailed(f"brand {brand_id!r} {lost} meanwhile: read it again", "If-Match") from error
    etag = brand_etag(brand_document(brand), brand)
    return with_etag(brand_out(brand), etag, HTTPStatus.OK if previous else HTTPStatus.CREATED)


@router.get(
    "/brands/<brand_id>/sla-policy",
    summary="A brand's SLA policy in force and its history",
    description="Answers with an ETag: send it back as If-Match to PUT a new policy.",
    responses=tagged_responses(SLAPolicyResponse, 400, 404),
    tags=["brands"],
)
def get_sla_policy(brand_id: BrandPath, stores: StoresDependency) -> Response[SLAPolicyResponse]:
    brand, _ = configured_brand(stores, brand_id)
    return with_etag(policies_out(brand), policy_etag(brand))


@router.put(
    "/brands/<brand_id>/sla-policy",
    summary="Change a brand's SLA policy from now on",
    description="Appends a new policy version effective now: waits that start from now on are measured against "
    "it; waits that started earlier keep the version they were measured against. Needs `If-Match: <ETag>` of "
    "GET /brands/{id}/sla-policy (428 without it, 412 when another version was added since).",
    responses=tagged_responses(SLAPolicyResponse, 400, 404, 412, 413, 415, 422, 428),
    tags=["brands"],
)
def put_sla_policy(
    brand_id: BrandPath,
    body: Annotated[SLAPolicyInput, Body(embed=False)],
    now: Now,
    stores: StoresDependency,
    if_match: IfMatch = None,
) -> Response[SLAPolicyResponse]:
    brand, _ = configured_brand(stores, brand_id)
    check_if_match(if_match, policy_etag(brand))
    policy = next_policy(brand, body, now)
    if not stores.brands.add_policy(brand_id, policy):
        raise PreconditionFailed("another policy version was added meanwhile: read it again", "If-Match")
    updated = brand.model_copy(update={"sla_policies": [*brand.sla_policies, policy]})
    return with_etag(policies_out(updated), policy_etag(updated))


def next_policy(brand: Brand, body: SLAPolicyInput, now: datetime) -> SLAPolicy:
    """The next version, effective now (never before the current one, so it always becomes the one in force)."""
    try:
        return SLAPolicy(
            version=max(policy.version for policy in brand.sla_policies) + 1,
            effective_from=max(now, brand.current_policy.effective_from),
            targets=body.targets,
            channel_targets=body.channel_targets,
            clock=body.clock,
            at_risk_fraction=body.at_risk_fraction,
        )
    except ValidationError as error:
        raise Unprocessable.from_validation(error) from error
