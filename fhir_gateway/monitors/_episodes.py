"""Psychiatric discharges, as the care-plan engine recorded them: a finished Encounter with an
engine CarePlan (identifier ``urn:fhir-gateway:careplan``). The engine makes plans only for
psychiatric discharges of living patients, so its plans are the list of discharges the monitors
watch (readmissions) and measure (FUH)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from fhir_gateway.monitors._days import parse, zone_of_resource
from fhir_gateway.monitors._fhir import read, ref, search
from fhir_gateway.settings import Settings

__all__ = ["Discharge", "PLAN_IDENTIFIER", "LIVE_PLAN", "patient_discharges", "all_discharges"]

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


def _discharge(session: Session, settings: Settings, plan: dict[str, Any]) -> Discharge | None:
    encounter = read(session, ref(plan, "encounter"))
    if encounter is None or encounter.get("status") != "finished":
        return None  # an A13 took the discharge back
    zone = zone_of_resource(session, settings, "Encounter", encounter["id"])
    end = parse((encounter.get("period") or {}).get("end"), zone)
    end = end or parse((plan.get("period") or {}).get("start"), zone)
    return None if end is None else Discharge(encounter, plan, end, zone)


def _newest_per_encounter(plans: list[dict[str, Any]]) -> list[dict[str, Any]]:
    # An A13 and a new A03 give one discharge two plans (#0 revoked, #1): keep the newest.
    by_encounter: dict[str, dict[str, Any]] = {}
    for plan in sorted(plans, key=lambda p: (p.get("meta") or {}).get("lastUpdated", "")):
        by_encounter[ref(plan, "encounter") or plan["id"]] = plan
    return list(by_encounter.values())


def _collect(
    session: Session, settings: Settings, params: list[tuple[str, str]]
) -> list[Discharge]:
    plans = search(session, "CarePlan", [("identifier", f"{PLAN_IDENTIFIER}|"), *params])
    found = (_discharge(session, settings, p) for p in _newest_per_encounter(plans))
    return sorted((d for d in found if d is not None), key=lambda d: d.at)


def patient_discharges(
    session: Session, settings: Settings, patient: str, *, live: bool = True
) -> list[Discharge]:
    """The patient's discharges, oldest first (``live``: only those whose plan is draft, active or on-hold)."""
    params = [("subject", patient)] + ([("status", LIVE_PLAN)] if live else [])
    return _collect(session, settings, params)


def all_discharges(session: Session, settings: Settings) -> list[Discharge]:
    return _collect(session, settings, [])
