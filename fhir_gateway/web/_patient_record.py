"""The patient page's record sections, read through the viewer's eyes: who the patient is, their
diagnoses, their hospital stays and emergency visits, and their family and contacts.

What the viewer may not see is never fetched, so it is neither listed nor counted (a diagnosis
labelled 42 CFR Part 2 is absent for someone the patient has not consented to). A visit that
began within 30 local days of an earlier discharge says so ("day 6 after the discharge of …"):
the fact a case manager looks for first, in the facility's calendar days.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from fhir_gateway.fhir import care_team
from fhir_gateway.privacy import (
    MHCA_SYSTEM,
    PART2,
    labels_of,
    nominated_representative,
    propose_representative,
)
from fhir_gateway.web._display import human_name
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text
from fhir_gateway.web._patient_text import INPATIENT, visit_kind

__all__ = [
    "PatientSummary",
    "Diagnosis",
    "Visit",
    "PatientContact",
    "person",
    "diagnoses",
    "visits",
    "contacts",
    "READMISSION_WINDOW_DAYS",
    "case_managers",
]

READMISSION_WINDOW_DAYS = 30
_CODE_SYSTEMS = {
    "http://hl7.org/fhir/sid/icd-10-cm": "ICD-10-CM",
    "http://hl7.org/fhir/sid/icd-10": "ICD-10",
    "http://snomed.info/sct": "SNOMED CT",
}
_CLINICAL = {
    "active": "Active",
    "recurrence": "Recurred",
    "relapse": "Relapsed",
    "inactive": "Inactive",
    "remission": "In remission",
    "resolved": "Resolved",
}
_VISIT_STATES = {
    "planned": "Planned",
    "arrived": "Arrived",
    "triaged": "Triaged",
    "in-progress": "Still there",
    "onleave": "On leave",
    "finished": "Ended",
    "cancelled": "Cancelled",
}


@dataclass(frozen=True, slots=True)
class PatientSummary:
    name: str
    born: str
    identifiers: list[str]
    phone: str
    address: str
    language: str


@dataclass(frozen=True, slots=True)
class Diagnosis:
    name: str
    code: str
    status: str
    when: str
    where: str
    part2: bool


@dataclass(slots=True)
class Visit:
    kind: str
    emergency: bool
    inpatient: bool
    started: str
    started_iso: str
    ended: str
    status: str
    length: str
    after_discharge: str  # "day 6 after the discharge of Mon 10 Mar 2025", or ""
    diagnoses: list[str] = field(default_factory=list)
    disposition: str = ""


@dataclass(frozen=True, slots=True)
class PatientContact:
    name: str
    relationship: str
    reach: str
    source: str
    related_person_id: str | None
    representative: str = ""  # "Nominated representative", or proposed for confirmation (MHCA)


def person(reader: PatientReader, patient: dict[str, Any]) -> PatientSummary:
    born = patient.get("birthDate")
    ids = [
        f"{concept_text(i.get('type'), 'Identifier')} {i.get('value')}"
        for i in patient.get("identifier") or []
        if isinstance(i, dict) and i.get("value")
    ]
    return PatientSummary(
        name=human_name(patient.get("name")) or "(no name)",
        born=reader.clock.day(born) if born else "birth date not recorded",
        identifiers=ids[:5],
        phone=_reach(patient.get("telecom")),
        address=_address(patient.get("address")),
        language=", ".join(
            concept_text(c.get("language")) for c in patient.get("communication") or []
        ),
    )


def _reach(telecoms: Any) -> str:
    parts = [
        f"{t.get('system') or 'contact'} {t.get('value')}"
        for t in telecoms or []
        if isinstance(t, dict) and t.get("value")
    ]
    return ", ".join(parts[:3])


def _address(addresses: Any) -> str:
    for a in addresses or []:
        if isinstance(a, dict):
            if a.get("text"):
                return str(a["text"])
            parts = [*(a.get("line") or []), a.get("city"), a.get("state"), a.get("postalCode")]
            return ", ".join(str(p) for p in parts if p)
    return ""


# -- diagnoses ------------------------------------------------------------------------------------


def _code(concept: Any) -> str:
    for coding in codings(concept):
        if coding.get("code"):
            system = _CODE_SYSTEMS.get(str(coding.get("system")), "")
            return f"{system} {coding['code']}".strip()
    return ""


def diagnoses(reader: PatientReader) -> list[Diagnosis]:
    found = [
        c
        for c in reader.of_patient("Condition", "subject")
        if (c.get("verificationStatus") or {}).get("coding", [{}])[0].get("code")
        != "entered-in-error"
    ]
    reader.names.prefetch((c.get("encounter") or {}).get("reference") for c in found)
    by_rank = sorted(found, key=lambda c: _rank(reader, c))  # the principal one first, …
    return [_diagnosis(reader, c) for c in sorted(by_rank, key=_recorded, reverse=True)]


def _rank(reader: PatientReader, condition: dict[str, Any]) -> int:
    """The diagnosis's rank at its visit (1: principal); unranked ones after the ranked."""
    encounter = reader.names.resource(condition.get("encounter")) or {}
    me = f"Condition/{condition.get('id')}"
    for entry in encounter.get("diagnosis") or []:
        if (entry.get("condition") or {}).get("reference") == me and entry.get("rank"):
            return int(entry["rank"])
    return 99


def _recorded(condition: dict[str, Any]) -> str:
    return str(condition.get("recordedDate") or condition.get("onsetDateTime") or "")


def _diagnosis(reader: PatientReader, condition: dict[str, Any]) -> Diagnosis:
    encounter = reader.names.resource(condition.get("encounter"))
    clinical = next((c.get("code") for c in codings(condition.get("clinicalStatus"))), None)
    when = _recorded(condition) or ((encounter or {}).get("period") or {}).get("end")
    return Diagnosis(
        name=concept_text(condition.get("code"), "(diagnosis not named)"),
        code=_code(condition.get("code")),
        status=_CLINICAL.get(str(clinical), "Recorded at the visit"),
        when=reader.clock.day(when) if when else "",
        where=visit_kind(encounter).lower() if encounter else "",
        part2=PART2["code"] in {label.get("code") for label in labels_of(condition)},
    )


# -- admissions and emergency visits ---------------------------------------------------------------


def visits(reader: PatientReader) -> list[Visit]:
    encounters = [
        e
        for e in reader.of_patient("Encounter", "subject")
        if e.get("status") != "entered-in-error"
    ]
    encounters.sort(key=lambda e: str((e.get("period") or {}).get("start") or ""))
    discharges: list[datetime] = []
    out = []
    for enc in encounters:
        out.append(_visit(reader, enc, discharges))
        end = reader.clock.local((enc.get("period") or {}).get("end"))
        if _class(enc) in INPATIENT and end is not None and enc.get("status") == "finished":
            discharges.append(end)
    return list(reversed(out))  # newest first


def _class(encounter: dict[str, Any]) -> str:
    return str((encounter.get("class") or {}).get("code") or "")


def _visit(reader: PatientReader, enc: dict[str, Any], discharges: list[datetime]) -> Visit:
    period = enc.get("period") or {}
    start, end = reader.clock.local(period.get("start")), reader.clock.local(period.get("end"))
    refs = [(d.get("condition") or {}).get("reference") for d in enc.get("diagnosis") or []]
    reader.names.prefetch(refs)
    names = [concept_text(c.get("code")) for c in map(reader.names.resource, refs) if c]
    disposition = ((enc.get("hospitalization") or {}).get("dischargeDisposition")) or {}
    return Visit(
        kind=visit_kind(enc),
        emergency=_class(enc) == "EMER",
        inpatient=_class(enc) in INPATIENT,
        started=reader.clock.when(period.get("start")) if start else "start not recorded",
        started_iso=reader.clock.iso(period.get("start")),
        ended=reader.clock.when(period.get("end")) if end else "",
        status=_VISIT_STATES.get(str(enc.get("status")), str(enc.get("status") or "")),
        length=_length(start, end) if _class(enc) in INPATIENT else "",
        after_discharge=_after(reader, start, discharges),
        diagnoses=[n for n in names if n],
        disposition=_disposition(disposition),
    )


def _length(start: datetime | None, end: datetime | None) -> str:
    if start is None or end is None:
        return ""
    nights = (end.date() - start.date()).days
    return f"{nights} night{'s' if nights != 1 else ''}"


def _after(reader: PatientReader, start: datetime | None, discharges: list[datetime]) -> str:
    if start is None:
        return ""
    earlier = [d for d in discharges if d <= start]
    if not earlier:
        return ""
    last = max(earlier)
    day = (start.date() - last.date()).days
    if day > READMISSION_WINDOW_DAYS:
        return ""
    return f"day {day} after the discharge of {reader.clock.day(last)}"


def _disposition(concept: dict[str, Any]) -> str:
    displays = [c.get("display") for c in codings(concept) if c.get("display")]
    return str(concept.get("text") or (displays[0] if displays else ""))


# -- family and contacts ----------------------------------------------------------------------------


def contacts(
    reader: PatientReader,
    patient: dict[str, Any],
    *,
    mhca: bool = False,
    named_in_directives: list[str] | None = None,
) -> list[PatientContact]:
    """Family and contacts; for a patient under the Mental Healthcare Act, the nominated
    representative (s14), or whom the gateway proposes for a case manager to confirm (s14(4))."""
    related = reader.of_patient("RelatedPerson")
    roles = _representative_roles(reader, patient, related, named_in_directives) if mhca else {}
    out = [
        PatientContact(
            name=human_name(rp.get("name")) or "(no name)",
            relationship=_relationship(rp, shown_apart=bool(roles)),
            reach=_reach(rp.get("telecom")),
            source="family member or carer on file",
            related_person_id=str(rp.get("id")),
            representative=roles.get(f"RelatedPerson/{rp.get('id')}", ""),
        )
        for rp in related
        if rp.get("active", True)
    ]
    for contact in patient.get("contact") or []:
        if not isinstance(contact, dict):
            continue
        out.append(
            PatientContact(
                name=human_name([contact.get("name") or {}])
                or reader.names.of(contact.get("organization"), missing="(no name)"),
                relationship=", ".join(concept_text(r) for r in contact.get("relationship") or []),
                reach=_reach(contact.get("telecom")),
                source="contact on the patient's record",
                related_person_id=None,
            )
        )
    return out


def _relationship(person: dict[str, Any], *, shown_apart: bool) -> str:
    """The relationship in words; the representative role left out when shown on its own."""
    return ", ".join(
        concept_text(r)
        for r in person.get("relationship") or []
        if not (shown_apart and (MHCA_SYSTEM, "nominated-representative") in _pairs(r))
    )


def _pairs(concept: Any) -> set[tuple[str, str]]:
    return {(str(c.get("system")), str(c.get("code"))) for c in codings(concept)}


def _representative_roles(
    reader: PatientReader,
    patient: dict[str, Any],
    related: list[dict[str, Any]],
    named_in_directives: list[str] | None,
) -> dict[str, str]:
    confirmed = nominated_representative(related)
    if confirmed is not None:
        return {confirmed: "Nominated representative (MHCA s14)"}
    first, _ = propose_representative(
        related,
        named_in_directives or [],
        patient_birth_date=patient.get("birthDate"),
        on=reader.clock.today,
    )
    if first is None:
        return {}
    return {first.person: f"Proposed nominated representative, to confirm ({first.basis})"}


def case_managers(reader: PatientReader) -> list[str]:
    """Who looks after the patient: the persons the patient's active care teams assign as case
    manager, else the care-coordination team the care-plan engine names (``fhir.care_team``)."""
    teams = [
        team
        for team in reader.of_patient("CareTeam", "subject")
        if team.get("status") in (None, "active", "proposed")
    ]
    assigned = [m for team in teams for m in care_team.assigned_case_managers(team)]
    named = assigned or [m for team in teams for m in care_team.case_managers(team)]
    members = {  # as the teams hold them: a display names one that cannot be read
        str(p["member"]["reference"]): p["member"]
        for team in teams
        for p in team.get("participant") or []
        if isinstance(p, dict)
        and isinstance(p.get("member"), dict)
        and p["member"].get("reference")
    }
    return list(dict.fromkeys(reader.who(members[m]) for m in named))
