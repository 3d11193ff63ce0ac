"""The templates' common FHIRPath shapes, evaluated in plain Python (same results as fhirpathpy).

fhirpathpy walks its parse tree node by node for every evaluation; the applicability conditions
of the shipped templates cost more than the rest of the plan's drafting that way. Two shapes
cover nearly all of them:

* a diagnosis test: ``%conditions.where(code.coding.where(system in %icd10 and
  code.replace('.', '').upper().matches('RE')).exists())`` (or ``%principal``), alone, with
  ``.exists()``, or two joined by ``|``;
* ``and`` / ``or`` / ``(…)`` / ``(…).not()`` over operands that are such tests or any other
  FHIRPath giving one boolean or nothing (those still go to fhirpathpy, each compiled once).

``plain(expression)`` gives a function of the variables, or None for any other shape. Whenever
the data is not what the plain code was written for (a code that is not a string, an extension
on a primitive, an operand that is not one boolean, an error), it raises ``Unplain`` and the
caller evaluates the whole expression with fhirpathpy, which then gives its own result or error.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

import fhirpathpy
import orjson
from fhirpathpy.engine.util import uniq
from fhirpathpy.models import models

from fhir_gateway.fhir.fhirpath_text import closing, split_top_level

__all__ = ["Unplain", "plain"]

Variables = Mapping[str, Any]
Plain = Callable[[Variables], list[Any]]
_Truth = Callable[[Variables], bool | None]  # FHIRPath's three values: true, false, empty


class Unplain(Exception):
    """The data falls outside what the plain code reproduces: evaluate with fhirpathpy."""


_DIAGNOSIS = re.compile(
    r"%(conditions|principal)\.where\(code\.coding\.where\(system in %icd10 and "
    r"code\.replace\('\.', ''\)\.upper\(\)\.matches\('([^'\\]+)'\)\)\.exists\(\)\)"
)


@lru_cache(maxsize=4096)
def plain(expression: str) -> Plain | None:
    try:
        return _plain(expression.strip())
    except Exception:  # an operand fhirpathpy cannot parse: it reports it on the whole
        return None


def _plain(text: str) -> Plain | None:
    test = _diagnosis(text)
    if test is not None:
        return test
    if " | " in text:
        parts = [_diagnosis(part) for part in text.split(" | ")]
        if len(parts) == 2 and all(parts):
            return _union([p for p in parts if p is not None])
    truth = _truth(text, top=True) if _has_test(text) else None
    if truth is None:
        return None
    return lambda variables: _as_list(truth(variables))


def _diagnosis(text: str) -> Plain | None:
    found = _DIAGNOSIS.fullmatch(text)
    if found is None:
        return None
    name, pattern = found.group(1), re.compile(found.group(2), re.DOTALL)

    def matching(variables: Variables) -> list[Any]:
        systems = variables.get("icd10")
        if not isinstance(systems, list) or not all(isinstance(s, str) for s in systems):
            raise Unplain
        items = variables.get(name)
        if not isinstance(items, list):
            raise Unplain
        # copies, as fhirpathpy gives: what a dynamicValue puts in a request is its own
        return [copy.deepcopy(item) for item in items if _has_code(item, systems, pattern)]

    return matching


def _has_code(resource: Any, systems: list[str], pattern: re.Pattern[str]) -> bool:
    if not isinstance(resource, dict):
        raise Unplain
    concept = resource.get("code")
    if concept is None:
        return False
    if not isinstance(concept, dict):
        raise Unplain
    codings = concept.get("coding", [])
    if not isinstance(codings, list):
        raise Unplain
    found = False
    for coding in codings:
        if not isinstance(coding, dict) or "_code" in coding or "_system" in coding:
            raise Unplain
        system, code = coding.get("system"), coding.get("code")
        if code is None:
            continue
        if not isinstance(code, str) or not isinstance(system, str | None):
            raise Unplain  # fhirpathpy's string functions raise here
        bare = code.replace(".", "")
        if not bare:
            raise Unplain  # and give nothing, or an empty string, here
        if system in systems and pattern.search(bare.upper()) is not None:
            found = True
    return found


def _union(parts: list[Plain]) -> Plain:
    return lambda variables: uniq([item for part in parts for item in part(variables)])


def _as_list(value: bool | None) -> list[Any]:
    return [] if value is None else [value]


# -- and / or / not ---------------------------------------------------------------------------

# Operators that bind looser than and/or: an expression with one at its top is left to fhirpathpy.
_LOOSER = (" xor ", " implies ")


def _truth(text: str, *, top: bool = False) -> _Truth | None:
    """The three-valued truth of ``text``, or None if it is not an and/or shape with at least one
    diagnosis test in it (``top``: a lone operand is left to fhirpathpy)."""
    ors = split_top_level(text, " or ", refuse=_LOOSER)
    if ors is None:
        return None
    if len(ors) > 1:
        terms = [_conjunction(part) for part in ors]
        return None if not all(terms) else _any([t for t in terms if t is not None])
    return _conjunction(text, top=top)


def _conjunction(text: str, *, top: bool = False) -> _Truth | None:
    ands = split_top_level(text, " and ", refuse=_LOOSER)
    if ands is None:
        return None
    if len(ands) > 1:
        terms = [_operand(part) for part in ands]
        return None if not all(terms) else _all([t for t in terms if t is not None])
    return None if top and not _has_test(text) else _operand(text)


def _operand(text: str) -> _Truth | None:
    text = text.strip()
    if text.endswith(".exists()") and _DIAGNOSIS.fullmatch(text[: -len(".exists()")]):
        test = _diagnosis(text[: -len(".exists()")])
        assert test is not None
        return lambda variables: bool(test(variables))
    group = _group(text)
    if group is not None:
        inner, negated = group
        truth = _truth(inner)
        if truth is None:
            return None
        return _not(truth) if negated else truth
    if not _has_test(text):
        return _delegated(text)
    return None


def _group(text: str) -> tuple[str, bool] | None:
    """``(inner)`` or ``(inner).not()`` → (inner, negated)."""
    negated = text.endswith(".not()")
    body = text[: -len(".not()")] if negated else text
    if not body.startswith("(") or closing(body, 0) != len(body) - 1:
        return None
    return body[1:-1], negated


def _has_test(text: str) -> bool:
    return _DIAGNOSIS.search(text) is not None


def _delegated(text: str) -> _Truth:
    fn = fhirpathpy.compile(text, model=models["r4"])
    narrow = _narrowing(text)

    def evaluated(variables: Variables) -> bool | None:
        try:
            result = list(fn({}, dict(variables)))
        except Exception as exc:
            raise Unplain from exc
        if result == []:
            return None
        if len(result) == 1 and isinstance(result[0], bool):
            return result[0]
        raise Unplain

    if narrow is None:
        return evaluated
    name, element = narrow
    known: dict[bytes, bool | None] = {}

    def truth(variables: Variables) -> bool | None:
        part = _part(variables.get(name), element)
        if part is None:
            return evaluated(variables)
        key = orjson.dumps(part, option=orjson.OPT_SORT_KEYS)
        if key not in known:
            if len(known) >= _KNOWN:
                known.clear()
            known[key] = evaluated({name: part})
        return known[key]

    return truth


# An operand that reads one element of one variable (``%encounter.serviceType…``) and nothing
# else gives the same answer for the same element: it is evaluated once per distinct value (the
# service types and dispositions of discharges repeat). Not for what reads the clock, the store
# or a terminology, nor for an element read from a list of resources.
_NARROW = re.compile(r"%([A-Za-z]\w*)\.([a-z]\w*)(?![\w(])")
_IMPURE = re.compile(r"\b(now|today|timeOfDay|resolve|memberOf|conformsTo|trace)\(|\$index")
_KNOWN = 256


def _narrowing(text: str) -> tuple[str, str] | None:
    found = _NARROW.match(text)
    if found is None or text.count("%") != 1 or _IMPURE.search(text):
        return None
    return found.group(1), found.group(2)


def _part(resource: Any, element: str) -> dict[str, Any] | None:
    """The resource reduced to its type and ``element`` (a choice element's every form, with
    their primitive extensions); None when it is not one resource."""
    if not isinstance(resource, dict) or not isinstance(resource.get("resourceType"), str):
        return None
    part = {"resourceType": resource["resourceType"]}
    for key, value in resource.items():
        bare = key[1:] if key.startswith("_") else key
        if bare == element or (bare.startswith(element) and bare[len(element) :][:1].isupper()):
            part[key] = value
    return part


def _all(terms: list[_Truth]) -> _Truth:
    def truth(variables: Variables) -> bool | None:
        values = [term(variables) for term in terms]  # each evaluated, as fhirpathpy does
        if False in values:
            return False
        return None if None in values else True

    return truth


def _any(terms: list[_Truth]) -> _Truth:
    def truth(variables: Variables) -> bool | None:
        values = [term(variables) for term in terms]
        if True in values:
            return True
        return None if None in values else False

    return truth


def _not(term: _Truth) -> _Truth:
    def truth(variables: Variables) -> bool | None:
        value = term(variables)
        return None if value is None else not value

    return truth
