"""Psychiatric discharges, as the care-plan engine recorded them: a finished Encounter with an
engine CarePlan (identifier ``urn:fhir-gateway:careplan``). The engine makes plans only for
psychiatric discharges of living patients, so its plans are the list of discharges the monitors
watch (readmissions) and measure (FUH)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway.monitors._days import parse, zones_of_resources
from fhir_gateway.monitors._fhir import chunks, local_ref, ref, search
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store.referrers import may_refer

__all__ = [
    "Discharge",
    "PLAN_IDENTIFIER",
    "LIVE_PLAN",
    "patient_discharges",
    "discharges_of",
    "all_discharges",
]

PLAN_IDENTIFIER = "urn:fhir-gateway:careplan"  # the engine's CarePlan.identifier system
LIVE_PLAN = "draft,active,on-hold"


@dataclass(frozen=True, slots=True)
class Discharge:
    encounter: dict[str, Any]
    plan: dict[str, Any]  # the newest plan of that discharge
    at: datetime  # aware, in the facility's zone
    zone: ZoneInfo

    @property
    def ref(self) -> str:
        return f"Encounter/{self.encounter['id']}"

    @property
    def patient(self) -> str:
        return ref(self.encounter, "subject") or ""

    @property
    def plan_ref(self) -> str:
        return f"CarePlan/{self.plan['id']}"


def _discharge(
    plan: dict[str, Any], encounter: dict[str, Any] | None, zone: ZoneInfo
) -> Discharge | None:
    if encounter is None or encounter.get("status") != "finished":
        return None  # an A13 took the discharge back
    end = parse((encounter.get("period") or {}).get("end"), zone)
    end = end or parse((plan.get("period") or {}).get("start"), zone)
    return None if end is None else Discharge(encounter, plan, end, zone)


def _encounters(session: Session, plans: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The current Encounters the plans name, by reference: one read for all."""
    refs = {local_ref(ref(p, "encounter")) for p in plans}
    ids = sorted(r.split("/", 1)[1] for r in refs if r.startswith("Encounter/"))
    found = repo.read_many(session, "Encounter", ids)
    return {f"Encounter/{s.res_id}": s.content for s in found if not s.deleted}


def _newest_per_encounter(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # An A13 and a new A03 give one discharge two plans (#0 revoked, #1): keep the newest.
    by_encounter: dict[str, dict[str, Any]] = {}
    for plan in sorted(plans, key=lambda p: (p.get("meta") or {}).get("lastUpdated", "")):
        by_encounter[ref(plan, "encounter") or plan["id"]] = plan
    return list(by_encounter.values())


def _collect(
    session: Session, settings: Settings, params: list[tuple[str, str]]
) -> list[Discharge]:
    plans = _newest_per_encounter(
        search(session, "CarePlan", [("identifier", f"{PLAN_IDENTIFIER}|"), *params])
    )
    encounters = _encounters(session, plans)
    zones = zones_of_resources(
        session, settings, "Encounter", [e["id"] for e in encounters.values()]
    )
    found = (
        _discharge(p, encounter, zones[encounter["id"]]) if encounter else None
        for p in plans
        for encounter in [encounters.get(local_ref(ref(p, "encounter")))]
    )
    return sorted((d for d in found if d is not None), key=lambda d: d.at)


def patient_discharges(
    session: Session, settings: Settings, patient: str, *, live: bool = True
) -> list[Discharge]:
    """The patient's discharges, oldest first (``live``: only those whose plan is draft, active or on-hold)."""
    if not may_refer(session, ("CarePlan",), "subject", patient):
        return []  # no plan names the patient (a first admission): one index probe, no search
    return discharges_of(session, settings, [patient], live=live)


def discharges_of(
    session: Session, settings: Settings, patients: Sequence[str], *, live: bool = True
) -> list[Discharge]:
    """``patient_discharges`` of each of ``patients``, oldest first: a search per ``CHUNK``."""
    status = [("status", LIVE_PLAN)] if live else []
    found: list[Discharge] = []
    for chunk in chunks(patients):
        found += _collect(session, settings, [("subject", ",".join(chunk)), *status])
    return sorted(found, key=lambda d: d.at)


def all_discharges(session: Session, settings: Settings) -> list[Discharge]:
    return _collect(session, settings, [])
