"""The patient page's advance directives (Mental Healthcare Act 2017, ss5–13), shown first: what
each refuses and prefers, whom it names, whether it is in force, and when it applies.

Found with the privacy module's searches and ordered by it (in force first), read with the
viewer's rights: a directive the viewer may not see is not shown. The capacity line quotes the
latest assessment (s4) because a directive applies only while the patient lacks capacity (s5(3)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from fhir_gateway import privacy
from fhir_gateway.web._patient_reader import PatientReader, concept_text

__all__ = ["Directive", "DirectivesSection", "advance_directives_section"]

_APPLIES = (
    "An advance directive applies only while the patient lacks capacity to decide about their "
    "mental healthcare (Mental Healthcare Act 2017, s5), and never to emergency treatment (s9)."
)


@dataclass(frozen=True, slots=True)
class Directive:
    title: str
    in_force: bool
    state: str  # "In force", "Revoked or ended", …
    dates: str  # "written Mon 3 Mar 2025 · from … until …"
    refuses: list[str]
    prefers: list[str]
    representatives: list[str]  # names, in the directive's order of precedence
    contacts: list[str]  # names of the people to contact and involve
    document_url: str  # "" when no document is attached


@dataclass(frozen=True, slots=True)
class DirectivesSection:
    directives: list[Directive]
    applies: str
    capacity: str  # the latest capacity assessment in words ("" when none is recorded)
    representatives_named: list[str]  # RelatedPerson/IDs named by the directives in force


def _found(reader: PatientReader) -> list[dict[str, Any]]:
    seen: dict[str, dict[str, Any]] = {}
    for res_type, params in privacy.advance_directive_searches(reader.patient_ref):
        for doc in reader.find(res_type, params):
            seen.setdefault(f"{res_type}/{doc.get('id')}", doc)
    return privacy.advance_directives(seen.values(), reader.clock.now)


def _provisions(provision: Any, inherited: str = "permit") -> list[tuple[str, dict[str, Any]]]:
    if not isinstance(provision, dict):
        return []
    kind = str(provision.get("type") or inherited)
    out = [(kind, provision)]
    for inner in provision.get("provision") or []:
        out += _provisions(inner, kind)
    return out


def _codes(directive: dict[str, Any], kind: str) -> list[str]:
    return [
        concept_text(code, "a coded item")
        for k, provision in _provisions(directive.get("provision"))
        if k == kind
        for code in provision.get("code") or []
    ]


def _dates(reader: PatientReader, directive: dict[str, Any]) -> str:
    written = directive.get("dateTime") or directive.get("date")
    period = (directive.get("provision") or {}).get("period") or (
        (directive.get("context") or {}).get("period") or {}
    )
    parts = [f"written {reader.clock.day(written)}"] if written else []
    if period.get("start"):
        parts.append(f"from {reader.clock.day(period['start'])}")
    if period.get("end"):
        parts.append(f"until {reader.clock.day(period['end'])}")
    return " · ".join(parts) or "no dates recorded"


def _document_url(directive: dict[str, Any]) -> str:
    attachments = [directive.get("sourceAttachment")] + [
        c.get("attachment") for c in directive.get("content") or [] if isinstance(c, dict)
    ]
    for attachment in attachments:
        url = str((attachment or {}).get("url") or "")
        if url.startswith(("https://", "http://")):
            return url
        if url.startswith("Binary/"):
            return f"/fhir/{url}"
    return ""


def _state(directive: dict[str, Any], in_force: bool) -> str:
    if in_force:
        return "In force"
    if directive.get("status") in ("inactive", "superseded"):
        return "Revoked or replaced (s8): not in force"
    return "Not in force"


def _directive(reader: PatientReader, directive: dict[str, Any]) -> Directive:
    now = reader.clock.now
    in_force = privacy.directive_in_force(directive, now)
    return Directive(
        title=concept_text(directive.get("type"), "") or "Advance directive",
        in_force=in_force,
        state=_state(directive, in_force),
        dates=_dates(reader, directive),
        refuses=_codes(directive, "deny"),
        prefers=_codes(directive, "permit"),
        representatives=[
            reader.names.of(r) for r in privacy.representatives_named([directive], now)
        ],
        contacts=[reader.names.of(r) for r in privacy.preferred_contacts([directive], now)],
        document_url=_document_url(directive),
    )


def _capacity(reader: PatientReader) -> str:
    code = f"{privacy.MHCA_SYSTEM}|capacity"
    assessed = reader.find("Observation", [("patient", reader.patient_ref), ("code", code)])
    capacity = privacy.has_capacity(assessed)
    if capacity is None:
        return ""
    latest = max(
        (o.get("effectiveDateTime") or o.get("issued") or "" for o in assessed), default=""
    )
    words = "has capacity" if capacity else "lacks capacity"
    return f"Latest capacity assessment ({reader.clock.day(latest)}): the patient {words}."


def advance_directives_section(reader: PatientReader) -> DirectivesSection:
    found = _found(reader)
    return DirectivesSection(
        directives=[_directive(reader, d) for d in found],
        applies=_APPLIES,
        capacity=_capacity(reader) if found else "",
        representatives_named=privacy.representatives_named(found, reader.clock.now),
    )
