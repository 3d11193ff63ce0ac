"""FHIRPath over the discharge context: every expression compiled once, by its text.

Templates name the context through variables (``%patient``, ``%encounter``, ``%conditions``,
``%principal``, ``%relatedPersons``, ``%icd10``); see ``DischargeContext.variables``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import fhirpathpy
from fhirpathpy.models import models

from fhir_gateway.careplans._plainpath import Unplain, plain
from fhir_gateway.errors import BusinessRule

__all__ = ["TemplateError", "compiled", "evaluate", "is_true"]

_R4 = models["r4"]


class TemplateError(BusinessRule):
    """A template that cannot be applied (bad FHIRPath, unknown definition): fix the template."""


@lru_cache(maxsize=4096)
def compiled(expression: str) -> Callable[..., list[Any]]:
    try:
        return fhirpathpy.compile(expression, model=_R4)
    except Exception as exc:  # the parser raises bare Exceptions of several kinds
        raise TemplateError(f"FHIRPath does not parse: {expression!r}: {exc}") from exc


def evaluate(expression: str, variables: Mapping[str, Any]) -> list[Any]:
    fast = plain(expression)  # the common shapes in plain Python, else (or unsure) fhirpathpy
    if fast is not None:
        try:
            return fast(variables)
        except Unplain:
            pass
    fn = compiled(expression)
    try:
        return list(fn({}, dict(variables)))
    except Exception as exc:
        raise TemplateError(f"FHIRPath {expression!r} failed: {exc}") from exc


def is_true(expression: str, variables: Mapping[str, Any]) -> bool:
    """FHIRPath truth of an applicability condition: a single ``true``; empty is false."""
    result = evaluate(expression, variables)
    if len(result) > 1:
        raise TemplateError(f"Condition {expression!r} gives {len(result)} values, not one boolean")
    return bool(result) and result[0] is True
