"""GET /brands, GET/PUT /brands/{id}, GET/PUT /brands/{id}/sla-policy.

A brand's configuration is one document. Writes are read-modify-write conditioned on the
document read, so two concurrent edits never lose one another (the loser retries, then
gets 409). SLA policies are a history: a PUT appends a version effective from now, so it
applies to waits that start after it while earlier waits keep the version they were
measured against.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from http import HTTPStatus
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body
from pydantic import ValidationError

from replyclock.api.dependencies import Now, Stores, StoresDependency
from replyclock.api.errors import Conflict, NotFound, Unprocessable, route_responses
from replyclock.api.parameters import BrandPath
from replyclock.api.routing import new_router
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
WRITE_ATTEMPTS = 3


def require_known_brand(stores: Stores, brand_id: str) -> None:
    """404 unless the brand is configured or measure has already seen it in data (and recorded waits for it)."""
    if stores.brands.get(brand_id) is not None:
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
        priority_rules=brand.priority_rules,
        sla_policy=policy_out(brand.current_policy),
    )


def policies_out(brand: Brand) -> SLAPolicyResponse:
    return SLAPolicyResponse(
        brand_id=brand.id,
        current=policy_out(brand.current_policy),
        history=[policy_out(policy) for policy in brand.sla_policies],
    )


def configured_brand(stores: Stores, brand_id: str) -> Brand:
    brand = stores.brands.get(brand_id)
    if brand is None:
        raise NotFound(f"brand {brand_id!r} is not configured", "brand_id")
    return brand


def update_brand(stores: Stores, brand_id: str, change: Callable[[Brand | None], Brand]) -> tuple[Brand, bool]:
    """Apply `change` to the stored brand (None: absent) and write the result unless someone wrote meanwhile.

    Returns the brand written and whether it was created.
    """
    for _ in range(WRITE_ATTEMPTS):
        found = stores.brands.get_with_config(brand_id)
        previous, previous_config = found if found else (None, None)
        updated = change(previous)
        try:
            stores.brands.put_if_unchanged(updated, previous_config)
        except ConditionFailed:
            continue
        return updated, previous is None
    raise Conflict("the brand changed while this update was being applied; retry")


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


@router.get("/brands", summary="Every configured brand", responses=route_responses(), tags=["brands"])
def list_brands(stores: StoresDependency) -> BrandList:
    brands = sorted(stores.brands.all(), key=lambda brand: brand.id)
    return BrandList(items=[BrandListItem(id=brand.id, name=brand.name) for brand in brands])


@router.get(
    "/brands/<brand_id>", summary="A brand's configuration", responses=route_responses(400, 404), tags=["brands"]
)
def get_brand(brand_id: BrandPath, stores: StoresDependency) -> BrandResponse:
    return brand_out(configured_brand(stores, brand_id))


@router.put(
    "/brands/<brand_id>",
    summary="Create or replace a brand's configuration",
    description="Replaces everything but the SLA policy history (see /brands/{id}/sla-policy); a new brand "
    "starts with the default policy, version 1. Answers 201 when the brand was created.",
    responses={
        201: {
            "description": "Created",
            "content": {content_types.APPLICATION_JSON: {"model": BrandResponse}},
        },
        **route_responses(400, 409, 413, 415, 422),
    },
    tags=["brands"],
)
def put_brand(
    brand_id: BrandPath, body: Annotated[BrandInput, Body(embed=False)], stores: StoresDependency
) -> Response[BrandResponse]:
    def replace(previous: Brand | None) -> Brand:
        fields: dict[str, Any] = {"id": brand_id, **body.model_dump(exclude_none=True)}
        fields["sla_policies"] = previous.sla_policies if previous else [SLAPolicy()]
        brand = validated_brand(fields)
        check_handles_free(stores, brand)
        return brand

    brand, created = update_brand(stores, brand_id, replace)
    status = HTTPStatus.CREATED if created else HTTPStatus.OK
    return Response(status_code=status.value, content_type=content_types.APPLICATION_JSON, body=brand_out(brand))


@router.get(
    "/brands/<brand_id>/sla-policy",
    summary="A brand's SLA policy in force and its history",
    responses=route_responses(400, 404),
    tags=["brands"],
)
def get_sla_policy(brand_id: BrandPath, stores: StoresDependency) -> SLAPolicyResponse:
    return policies_out(configured_brand(stores, brand_id))


@router.put(
    "/brands/<brand_id>/sla-policy",
    summary="Change a brand's SLA policy from now on",
    description="Appends a new policy version effective now: waits that start from now on are measured against "
    "it; waits that started earlier keep the version they were measured against.",
    responses=route_responses(400, 404, 409, 413, 415, 422),
    tags=["brands"],
)
def put_sla_policy(
    brand_id: BrandPath, body: Annotated[SLAPolicyInput, Body(embed=False)], now: Now, stores: StoresDependency
) -> SLAPolicyResponse:
    def append(previous: Brand | None) -> Brand:
        if previous is None:
            raise NotFound(f"brand {brand_id!r} is not configured", "brand_id")
        policy = next_policy(previous, body, now)
        return validated_brand({**previous.model_dump(), "sla_policies": [*previous.sla_policies, policy]})

    brand, _ = update_brand(stores, brand_id, append)
    return policies_out(brand)


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
