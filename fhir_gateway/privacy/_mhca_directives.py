"""Advance directives (MHCA Chapter III, ss5–13): how they are stored, when they apply, and which
care-plan activity conflicts with one.

Stored as FHIR data, found with the searches of ``advance_directive_searches`` (a page lists
``advance_directives(found)``: those in force first, the newest first):

* a ``Consent`` whose ``scope`` is ``adr`` (consentscope), or whose ``category`` is ``acd``
  (consentcategorycodes) or LOINC 42348-3 *Advance directives*. Its provisions say what the
  patient wants (s5(1)(a): ``permit`` with ``code``) and refuses (s5(1)(b): ``deny`` with
  ``code``); its ``provision.actor``s with role ``MHCA_SYSTEM|nominated-representative`` are the
  representatives it names in order of precedence (s5(1)(c)), those with role
  ``|preferred-contact`` the people to contact and involve;
* a ``DocumentReference`` of type LOINC 42348-3 (the written directive, s6): the gateway cannot
  read it, so the psychiatrist checks the plan against it.

A directive is in force while ``active`` (``current`` for a document) and within its period;
revoked (s8) it is ``inactive``. It applies only while the patient lacks capacity (s5(3)): the
latest Observation ``MHCA_SYSTEM|capacity`` (valueBoolean) decides; with none recorded the
protective reading is that it may apply. It never applies to emergency treatment (s9): an activity
of priority ``stat``. A conflict is never resolved here: the activity stays in the plan and the
psychiatrist decides (s10; s11: the Board may review the directive).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_gateway.privacy._mhca import (
    CAPACITY,
    NOMINATED_REPRESENTATIVE,
    PREFERRED_CONTACT,
    consent_in_force,
    has_mhca_code,
)

__all__ = [
    "ADVANCE_DIRECTIVE_LOINC",
    "DirectiveFinding",
    "advance_directive_searches",
    "advance_directives",
    "is_advance_directive",
    "directive_in_force",
    "has_capacity",
    "is_emergency",
    "directive_findings",
    "unreadable_directives",
    "representatives_named",
    "preferred_contacts",
]

_LOINC = "http://loinc.org"
ADVANCE_DIRECTIVE_LOINC = "42348-3"
_SCOPE = "http://terminology.hl7.org/CodeSystem/consentscope"
_CATEGORY = "http://terminology.hl7.org/CodeSystem/consentcategorycodes"
_FINAL = frozenset({"final", "amended", "corrected"})


@dataclass(frozen=True, slots=True)
class DirectiveFinding:
    directive: str  # Consent/ID or DocumentReference/ID
    refused: (
        str  # what the directive refuses, in words ("" for a directive the gateway cannot read)
    )
    text: str  # the sentence a psychiatrist reads


def advance_directive_searches(patient: str) -> list[tuple[str, list[tuple[str, str]]]]:
    """The searches that find a patient's advance directives (type, parameters)."""
    return [
        ("Consent", [("patient", patient), ("scope", f"{_SCOPE}|adr")]),
        ("Consent", [("patient", patient), ("category", f"{_CATEGORY}|acd")]),
        (
            "DocumentReference",
            [("patient", patient), ("type", f"{_LOINC}|{ADVANCE_DIRECTIVE_LOINC}")],
        ),
    ]


def _has(concepts: Any, system: str, code: str) -> bool:
    items = concepts if isinstance(concepts, list) else [concepts]
    return any(
        c.get("system") == system and c.get("code") == code
        for concept in items
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    )


def is_advance_directive(resource: dict[str, Any]) -> bool:
    kind = resource.get("resourceType")
    if kind == "Consent":
        return (
            _has(resource.get("scope"), _SCOPE, "adr")
            or _has(resource.get("category"), _CATEGORY, "acd")
            or _has(resource.get("category"), _LOINC, ADVANCE_DIRECTIVE_LOINC)
        )
    return kind == "DocumentReference" and _has(
        resource.get("type"), _LOINC, ADVANCE_DIRECTIVE_LOINC
    )


def directive_in_force(directive: dict[str, Any], at: datetime) -> bool:
    if not is_advance_directive(directive):
        return False
    if directive.get("resourceType") == "DocumentReference":
        return directive.get("status") == "current"
    return consent_in_force(directive, at)


def _written(directive: dict[str, Any]) -> str:
    return str(directive.get("dateTime") or directive.get("date") or "")


def advance_directives(resources: Iterable[dict[str, Any]], at: datetime) -> list[dict[str, Any]]:
    """The advance directives among ``resources``: those in force first, each group newest first."""
    found = [r for r in resources if is_advance_directive(r)]
    found.sort(key=_written, reverse=True)
    return sorted(found, key=lambda d: not directive_in_force(d, at))


def has_capacity(observations: Iterable[dict[str, Any]]) -> bool | None:
    """The latest capacity assessment (s4): True, False, or None when none is recorded."""
    assessed = [
        o
        for o in observations
        if o.get("resourceType") == "Observation"
        and o.get("status") in _FINAL
        and has_mhca_code(o.get("code"), CAPACITY)
        and isinstance(o.get("valueBoolean"), bool)
    ]
    if not assessed:
        return None
    latest = max(assessed, key=lambda o: str(o.get("effectiveDateTime") or o.get("issued") or ""))
    return bool(latest["valueBoolean"])


def is_emergency(activity: dict[str, Any]) -> bool:
    """Emergency treatment (s94), to which no advance directive applies (s9): priority ``stat``."""
    return activity.get("priority") == "stat"


def _provisions(provision: dict[str, Any], inherited: str) -> Iterable[tuple[str, dict[str, Any]]]:
    kind = provision.get("type", inherited)
    yield kind, provision
    for inner in provision.get("provision") or []:
        if isinstance(inner, dict):
            yield from _provisions(inner, kind)


def _refusals(directive: dict[str, Any]) -> list[dict[str, Any]]:
    top = directive.get("provision")
    if directive.get("resourceType") != "Consent" or not isinstance(top, dict):
        return []
    return [
        concept
        for kind, provision in _provisions(top, "permit")
        if kind == "deny"
        for concept in provision.get("code") or []
        if isinstance(concept, dict)
    ]


def _codings(concept: Any) -> set[tuple[str, str]]:
    return {
        (str(c.get("system")), str(c.get("code")))
        for c in (concept or {}).get("coding") or []
        if isinstance(c, dict) and c.get("code")
    }


def _words(concept: dict[str, Any]) -> str:
    return str(
        concept.get("text")
        or next((c.get("display") for c in concept.get("coding") or [] if c.get("display")), "")
        or next((c.get("code") for c in concept.get("coding") or []), "")
    )


def _capacity_words(capacity: bool | None) -> str:
    return (
        "the patient lacks capacity (s5(3))"
        if capacity is False
        else "the patient's capacity is not yet assessed, so the directive may apply (s5(3))"
    )


def directive_findings(
    directives: Iterable[dict[str, Any]],
    activity: dict[str, Any],
    *,
    capacity: bool | None,
    at: datetime,
) -> list[DirectiveFinding]:
    """Where a care-plan activity (a ServiceRequest or its ActivityDefinition) goes against an
    advance directive in force: for the psychiatrist's decision, never removed."""
    if capacity is True or is_emergency(activity):
        return []  # s5(3): the patient decides; s9: emergency treatment
    wanted = _codings(activity.get("code"))
    title = _words(activity.get("code") or {}) or str(activity.get("title") or "this activity")
    out = []
    for directive in directives:
        if directive.get("resourceType") != "Consent" or not directive_in_force(directive, at):
            continue
        for refused in _refusals(directive):
            if wanted & _codings(refused):
                ref = f"Consent/{directive.get('id')}"
                out.append(
                    DirectiveFinding(
                        ref,
                        _words(refused),
                        f"'{title}' goes against the patient's advance directive ({ref}), which "
                        f"refuses {_words(refused)}; {_capacity_words(capacity)}. For the "
                        "psychiatrist's decision: follow the directive (s10) or apply to the "
                        "Mental Health Review Board to review it (s11). Not removed from the plan.",
                    )
                )
    return out


def unreadable_directives(
    directives: Iterable[dict[str, Any]], *, capacity: bool | None, at: datetime
) -> list[DirectiveFinding]:
    """Directives in force that the gateway cannot check a plan against (a document, or a Consent
    without coded refusals or wishes): the psychiatrist reads them."""
    if capacity is True:
        return []
    out = []
    for d in directives:
        if not directive_in_force(d, at):
            continue
        coded = d.get("resourceType") == "Consent" and any(
            provision.get("code")
            for _, provision in _provisions(d.get("provision") or {}, "permit")
        )
        if not coded:
            ref = f"{d['resourceType']}/{d.get('id')}"
            out.append(
                DirectiveFinding(
                    ref,
                    "",
                    f"The patient's advance directive ({ref}) cannot be read by the gateway; "
                    f"{_capacity_words(capacity)}. The psychiatrist checks the plan against it (s10).",
                )
            )
    return out


def _actors(directive: dict[str, Any], role: str) -> list[str]:
    top = directive.get("provision")
    if directive.get("resourceType") != "Consent" or not isinstance(top, dict):
        return []
    return [
        str((actor.get("reference") or {}).get("reference"))
        for _, provision in _provisions(top, "permit")
        for actor in provision.get("actor") or []
        if isinstance(actor, dict)
        and has_mhca_code(actor.get("role"), role)
        and (actor.get("reference") or {}).get("reference")
    ]


def representatives_named(directives: Iterable[dict[str, Any]], at: datetime) -> list[str]:
    """The nominated representatives the directives in force name, in order of precedence."""
    return [
        r
        for d in directives
        if directive_in_force(d, at)
        for r in _actors(d, NOMINATED_REPRESENTATIVE)
    ]


def preferred_contacts(directives: Iterable[dict[str, Any]], at: datetime) -> list[str]:
    """The people the directives in force ask to be contacted (references, in their order)."""
    found = [
        r for d in directives if directive_in_force(d, at) for r in _actors(d, PREFERRED_CONTACT)
    ]
    return list(dict.fromkeys(found))
