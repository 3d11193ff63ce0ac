"""Rules that other concerns attach to resource writes, without the write path knowing them.

A *check* runs before a create, update, patch or delete is stored: it may refuse the change
(raise a GatewayError, e.g. BusinessRule for an illegal Task transition) or return warnings that
the response carries in an OperationOutcome. A *consequence* runs after the change is stored, in
the same transaction (e.g. a completed Task completes its ServiceRequest; a finished inpatient
Encounter is a discharge). Both get a ``WriteEvent``; both are registered per resource type
(or for every type with ``None``) at import time of the module that owns the rule.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.errors import Issue
from fhir_gateway.store.repository import StoredResource

__all__ = [
    "WriteEvent",
    "Check",
    "Consequence",
    "on_check",
    "on_stored",
    "run_checks",
    "run_consequences",
]


@dataclass(frozen=True, slots=True)
class WriteEvent:
    session: Session
    caller: Caller
    res_type: str
    interaction: str  # create | update | patch | delete
    before: StoredResource | None  # the current version, None for a create (or a deleted one)
    after: dict[str, Any] | None  # the proposed content, None for a delete
    if_match: int | None = None  # the version the client made the change conditional on (If-Match)


Check = Callable[[WriteEvent], list[Issue] | None]
Consequence = Callable[[WriteEvent, StoredResource | None], None]

_checks: dict[str | None, list[Check]] = defaultdict(list)
_consequences: dict[str | None, list[Consequence]] = defaultdict(list)


def on_check(res_type: str | None) -> Callable[[Check], Check]:
    def register(fn: Check) -> Check:
        if fn not in _checks[res_type]:
            _checks[res_type].append(fn)
        return fn

    return register


def on_stored(res_type: str | None, *, first: bool = False) -> Callable[[Consequence], Consequence]:
    """``first``: before the consequences registered so far (what the others build on, such as
    the consent grants every later rule's visibility check reads)."""

    def register(fn: Consequence) -> Consequence:
        if fn not in _consequences[res_type]:
            if first:
                _consequences[res_type].insert(0, fn)
            else:
                _consequences[res_type].append(fn)
        return fn

    return register


def run_checks(event: WriteEvent) -> list[Issue]:
    warnings: list[Issue] = []
    for fn in (*_checks[None], *_checks[event.res_type]):
        warnings.extend(fn(event) or [])
    return warnings


def run_consequences(event: WriteEvent, stored: StoredResource | None) -> None:
    for fn in (*_consequences[None], *_consequences[event.res_type]):
        fn(event, stored)
