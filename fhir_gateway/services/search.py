"""Search as a use case: one read transaction around the search engine."""

from __future__ import annotations

from fhir_gateway.context import Caller
from fhir_gateway.settings import Settings
from fhir_gateway.store.budget import Budget
from fhir_gateway.store.db import Database
from fhir_gateway.store.search import search_bundle

__all__ = ["search"]


def search(
    db: Database,
    res_type: str | None,
    params: list[tuple[str, str]],
    *,
    caller: Caller,
    base_url: str,
    settings: Settings,
    strict: bool = False,
    budget: Budget | None = None,
) -> bytes:
    return db.read(
        search_bundle,
        res_type,
        params,
        caller=caller,
        base_url=base_url,
        settings=settings,
        strict=strict,
        budget=budget,
    )
