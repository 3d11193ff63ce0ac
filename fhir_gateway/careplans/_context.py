"""The discharge context that templates are applied to: the Patient, the discharge Encounter, its
Conditions (principal first), the patient's RelatedPersons, and the discharge instant in the
discharging facility's zone. Built once from the store (``load_context``); pure afterwards."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.errors import InvalidRequest, NotFound
from fhir_gateway.services import lookup
from fhir_gateway.settings import Settings

__all__ = [
    "DischargeEvent",
    "DraftedPlan",
    "DischargeContext",
    "ICD10_SYSTEMS",
    "load_context",
    "load_subject_context",
    "facility_zone",
    "parse_fhir_datetime",
]

ICD10_SYSTEMS = (
    "http://hl7.org/fhir/sid/icd-10",
    "http://hl7.org/fhir/sid/icd-10-cm",
    "urn:oid:2.16.840.1.113883.6.3",
    "urn:oid:2.16.840.1.113883.6.90",
)


@dataclass(frozen=True, slots=True)
class DischargeEvent:
    """What the intake hands over: the discharge Encounter, and who sent it.

    ``zone`` is the discharging facility's IANA zone (else ``sender_zones[sender]``, else
    ``default_sender_zone``); ``sender`` ('APP|FACILITY' or a FHIR source endpoint) also picks
    the 42 CFR Part 2 rule (``privacy.is_part2_sender``).
    """

    encounter: str
    sender: str | None = None
    zone: str | None = None


@dataclass(frozen=True, slots=True)
class DraftedPlan:
    """A care plan the engine drafted on a discharge, before it is stored: what the ``plan`` rules
    see (``hooks.Rules.on_plan``). ``resources``: the plan's new resources by ``Type/id`` (its
    CareTeam, Goals, ServiceRequests, referral Tasks), not stored yet."""

    plan: dict[str, Any]
    resources: dict[str, dict[str, Any]]
    encounter: dict[str, Any]
    zone: str | None


@dataclass(frozen=True, slots=True)
class DischargeContext:
    patient: dict[str, Any]
    encounter: dict[str, Any] | None
    conditions: list[dict[str, Any]]
    principal: dict[str, Any] | None
    related_persons: list[dict[str, Any]]
    discharged_at: datetime  # aware, in the facility's zone
    facility: str | None = None
    sender: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def patient_ref(self) -> str:
        return f"Patient/{self.patient['id']}"

    @property
    def encounter_ref(self) -> str | None:
        return f"Encounter/{self.encounter['id']}" if self.encounter else None

    @property
    def discharge_date(self) -> date:
        return self.discharged_at.date()

    def attending(self) -> list[str]:
        """References of the Encounter's attending practitioners (PV1-7)."""
        out = []
        for part in (self.encounter or {}).get("participant", []):
            codes = {c.get("code") for t in part.get("type", []) for c in t.get("coding", [])}
            ref = (part.get("individual") or {}).get("reference")
            if ref and codes & {"ATND", "attender"}:
                out.append(ref)
        return out

    def variables(self) -> dict[str, Any]:
        return {
            "patient": self.patient,
            "encounter": self.encounter or [],
            "conditions": self.conditions,
            "principal": [self.principal] if self.principal else [],
            "relatedPersons": self.related_persons,
            "icd10": list(ICD10_SYSTEMS),
            "dischargeDate": self.discharge_date.isoformat(),
            **self.extra,
        }


# -- time -------------------------------------------------------------------------------------


def facility_zone(
    settings: Settings, *, zone: str | None = None, sender: str | None = None
) -> ZoneInfo:
    """The zone given by the intake, else the sender's (``sender_zones``), else the default."""
    facility = (sender or "").rpartition("|")[2]
    name = zone or settings.sender_zones.get(sender or "") or settings.sender_zones.get(facility)
    name = name or settings.default_sender_zone
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError as exc:
        raise InvalidRequest(f"Unknown time zone {name!r}") from exc


def parse_fhir_datetime(text: str, zone: ZoneInfo) -> datetime:
    """A FHIR date or dateTime as an aware datetime in ``zone``; no offset means local time."""
    if "T" not in text:  # a date, year-month or year: the start of that day in the zone
        text = {4: f"{text}-01-01", 7: f"{text}-01"}.get(len(text), text)
    value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=zone)
    return value.astimezone(zone)


# -- loading ----------------------------------------------------------------------------------


_read = lookup.read
_search = lookup.search


def _ordered_conditions(
    session: Session, encounter: dict[str, Any]
) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The encounter's Conditions, principal first (diagnosis rank 1, else the first DG1)."""
    diagnoses = sorted(
        enumerate(encounter.get("diagnosis", [])),
        key=lambda item: (item[1].get("rank") != 1, item[0]),
    )
    of_encounter = {
        f"Condition/{c['id']}": c
        for c in _search(session, "Condition", [("encounter", f"Encounter/{encounter['id']}")])
    }
    refs = [str((d.get("condition") or {}).get("reference") or "") for _, d in diagnoses]
    elsewhere = lookup.read_all(session, [r for r in refs if r and r not in of_encounter])
    by_id: dict[str, dict[str, Any]] = {}
    for ref in refs:  # the diagnoses in rank order, then the encounter's other Conditions
        condition = of_encounter.get(ref) or elsewhere.get(ref)
        if condition is not None:
            by_id.setdefault(condition["id"], condition)
    for condition in of_encounter.values():
        by_id.setdefault(condition["id"], condition)
    conditions = list(by_id.values())
    return conditions, (conditions[0] if conditions else None)


def _related_persons(session: Session, patient_ref: str) -> list[dict[str, Any]]:
    people = _search(session, "RelatedPerson", [("patient", patient_ref)])
    return [p for p in people if p.get("active", True) is not False]


def load_context(
    session: Session,
    event: DischargeEvent,
    settings: Settings,
    *,
    encounter: dict[str, Any] | None = None,
) -> DischargeContext:
    """``encounter``: the event's Encounter when the caller has just read it (not read again)."""
    encounter = encounter or _read(session, event.encounter)
    if encounter is None:
        raise NotFound(f"{event.encounter} is not known")
    patient = _read(session, (encounter.get("subject") or {}).get("reference"))
    if patient is None or patient.get("resourceType") != "Patient":
        raise InvalidRequest(f"{event.encounter} has no Patient subject")
    facility = (event.sender or "").rpartition("|")[2] or None
    zone = facility_zone(settings, zone=event.zone, sender=event.sender)
    end = (encounter.get("period") or {}).get("end")
    discharged = parse_fhir_datetime(end, zone) if end else clock.now().astimezone(zone)
    conditions, principal = _ordered_conditions(session, encounter)
    return DischargeContext(
        patient=patient,
        encounter=encounter,
        conditions=conditions,
        principal=principal,
        related_persons=_related_persons(session, f"Patient/{patient['id']}"),
        discharged_at=discharged,
        facility=facility,
        sender=event.sender,
    )


def load_subject_context(
    session: Session, patient_ref: str, settings: Settings
) -> DischargeContext:
    """For ``$apply`` with a subject and no encounter: the patient's active Conditions, today."""
    patient = _read(session, patient_ref)
    if patient is None or patient.get("resourceType") != "Patient":
        raise NotFound(f"{patient_ref} is not a known Patient")
    conditions = [
        c
        for c in _search(session, "Condition", [("subject", patient_ref)])
        if not {cd.get("code") for cd in (c.get("clinicalStatus") or {}).get("coding", [])}
        & {"inactive", "resolved", "remission"}
    ]
    zone = facility_zone(settings)
    return DischargeContext(
        patient=patient,
        encounter=None,
        conditions=conditions,
        principal=conditions[0] if conditions else None,
        related_persons=_related_persons(session, patient_ref),
        discharged_at=clock.now().astimezone(zone),
    )
