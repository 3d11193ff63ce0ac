"""Checks and how they are declared.

A check is a function of the run context that returns normally (pass), raises ``CheckFailed``
(fail) or ``CheckSkipped`` (the server does not claim what the check needs). ``level="should"``
marks behaviour the FHIR specification recommends but does not require: its failure is reported
as a warning and does not fail the run. A *family* yields checks built from the server's own
claims (its CapabilityStatement), one per resource type for instance.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conformance._context import Context

__all__ = [
    "Check",
    "CheckFailed",
    "CheckSkipped",
    "Family",
    "check",
    "family",
    "registered_checks",
    "registered_families",
]

CheckFunc = Callable[["Context"], None]


class CheckFailed(AssertionError):
    """The server did not behave as FHIR says; the message says what was sent and what came back."""


class CheckSkipped(Exception):
    """The check does not apply: the server does not claim what it needs."""


@dataclass(frozen=True, slots=True)
class Check:
    id: str  # "category.name", e.g. "versioning.if_match_stale"
    title: str
    run: CheckFunc
    level: str = "must"  # must | should
    needs: tuple[tuple[str, str], ...] = ()  # (resource type, interaction) claims required

    @property
    def category(self) -> str:
        return self.id.split(".", 1)[0]


@dataclass(frozen=True, slots=True)
class Family:
    category: str
    expand: Callable[[Context], Iterator[Check]]


_CHECKS: list[Check] = []
_FAMILIES: list[Family] = []


def check(
    check_id: str, title: str, *, level: str = "must", needs: tuple[tuple[str, str], ...] = ()
) -> Callable[[CheckFunc], CheckFunc]:
    def register(func: CheckFunc) -> CheckFunc:
        _CHECKS.append(Check(check_id, title, func, level, needs))
        return func

    return register


def family(category: str) -> Callable[[Callable[[Context], Iterator[Check]]], Any]:
    def register(func: Callable[[Context], Iterator[Check]]) -> Any:
        _FAMILIES.append(Family(category, func))
        return func

    return register


def registered_checks() -> list[Check]:
    import conformance.checks  # noqa: F401 - importing registers every check module

    return list(_CHECKS)


def registered_families() -> list[Family]:
    import conformance.checks  # noqa: F401

    return list(_FAMILIES)
