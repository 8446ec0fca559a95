"""Faults injected into DynamoDB calls from inside botocore, so the code under test meets them as it would on AWS."""

from __future__ import annotations

import json
from typing import Any

from botocore.exceptions import ClientError

from replyclock.dal.table import get_resource


class FaultInjector:
    """Raises an error on every n-th DynamoDB call of the chosen operations, from inside botocore.

    The number of faults is bounded: a strictly periodic fault can hit the same write of a retried
    batch on every attempt and never let it through, which no real outage does forever.
    """

    def __init__(
        self,
        operations: set[str],
        every: int,
        error: type[Exception] | str,
        limit: int = 40,
        partition_prefix: str = "",
    ) -> None:
        self.operations = operations
        self.every = every
        self.error = error
        self.limit = limit
        # Only calls on items whose partition key starts with this (a storm on one kind of item).
        self.partition_prefix = partition_prefix
        self.calls = 0
        self.injected = 0

    def __call__(self, model: Any, params: dict[str, Any] | None = None, **_: Any) -> None:
        if model.name not in self.operations or not self._on_chosen_items(params):
            return
        self.calls += 1
        if self.calls % self.every or self.injected >= self.limit:
            return
        self.injected += 1
        if isinstance(self.error, str):
            raise ClientError({"Error": {"Code": self.error, "Message": "injected fault"}}, model.name)
        raise self.error("injected fault")

    def _on_chosen_items(self, params: dict[str, Any] | None) -> bool:
        if not self.partition_prefix:
            return True
        request = json.loads((params or {}).get("body") or b"{}")
        key = request.get("Item") or request.get("Key") or {}
        return str(key.get("pk", {}).get("S", "")).startswith(self.partition_prefix)


class Faults:
    def __init__(self) -> None:
        self._events = get_resource().meta.client.meta.events
        self._installed: list[FaultInjector] = []

    def __call__(self, injector: FaultInjector) -> FaultInjector:
        self._events.register("before-call.dynamodb", injector)
        self._installed.append(injector)
        return injector

    def stop(self) -> None:
        for injector in self._installed:
            self._events.unregister("before-call.dynamodb", injector)
        self._installed.clear()
