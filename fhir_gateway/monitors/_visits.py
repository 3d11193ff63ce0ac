"""What an Encounter write means to the monitors (pure): an inpatient admission (A01, A06 with
PV1-2 I, a FHIR admit notification), an emergency visit (A04 with PV1-2 E), an outpatient visit
(A04 with PV1-2 O: a follow-up, never a readmission), a cancellation (A11, or entered-in-error,
or a delete) or the end of an inpatient stay."""

from __future__ import annotations

from typing import Any

__all__ = [
    "ADMISSION",
    "EMERGENCY",
    "CANCELLED",
    "DISCHARGED",
    "change",
    "is_inpatient",
    "is_emergency",
    "is_outpatient",
    "is_open",
    "INPATIENT_CLASSES",
    "OUTPATIENT_CLASSES",
]

ADMISSION, EMERGENCY, CANCELLED, DISCHARGED = "admission", "emergency", "cancelled", "discharged"
INPATIENT_CLASSES = frozenset(
    {"IMP", "ACUTE", "NONAC", "I"}
)  # v3 ActCode (and a v2 0004 code kept as is)
EMERGENCY_CLASSES = frozenset({"EMER", "E"})
OUTPATIENT_CLASSES = frozenset({"AMB", "VR", "HH", "O"})
OPEN = frozenset({"arrived", "triaged", "in-progress", "onleave"})
VOID = frozenset({"cancelled", "entered-in-error"})


def _class(encounter: dict[str, Any] | None) -> str | None:
    return ((encounter or {}).get("class") or {}).get("code")


def is_open(encounter: dict[str, Any] | None) -> bool:
    return (encounter or {}).get("status") in OPEN


def is_inpatient(encounter: dict[str, Any] | None) -> bool:
    return _class(encounter) in INPATIENT_CLASSES


def is_emergency(encounter: dict[str, Any] | None) -> bool:
    return _class(encounter) in EMERGENCY_CLASSES


def is_outpatient(encounter: dict[str, Any] | None) -> bool:
    return _class(encounter) in OUTPATIENT_CLASSES


def change(before: dict[str, Any] | None, after: dict[str, Any] | None) -> str | None:
    """The event this write is, or None (an update that changes nothing the monitors watch)."""
    if after is None or after.get("status") in VOID:
        return CANCELLED if before is not None and before.get("status") not in VOID else None
    if is_inpatient(after) and is_open(after) and not (is_inpatient(before) and is_open(before)):
        return ADMISSION
    if is_emergency(after) and is_open(after) and not (is_emergency(before) and is_open(before)):
        return EMERGENCY
    if (
        is_inpatient(after)
        and after.get("status") == "finished"
        and (before or {}).get("status") != "finished"
    ):
        return DISCHARGED
    return None
