"""Acknowledging and resolving an alert (a Flag) from the patient page, with a note.

    review_alert(session, caller, "cm", "p1", "flag-id", version=2, action="resolved", note="…")

Acknowledged: the Flag stays ``active`` (the risk is still there; someone is on it). Resolved:
the Flag becomes ``inactive`` and its ``period.end`` is now. Either way the note, its author and
time go on the Flag in the ``FLAG_REVIEW`` extension (R4's Flag has no note), so an API client
reads them too, and a Provenance names who did it. The write is the caller's own
(``services.resources``, with the version the page showed as If-Match: a Flag changed meanwhile
is refused, not overwritten).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError, NotFound
from fhir_gateway.services import resources
from fhir_gateway.web._patient_provenance import record_provenance
from fhir_gateway.web._patient_reader import PatientReader

__all__ = ["FLAG_REVIEW", "ACTIONS", "AlertReview", "reviews_of", "review_alert"]

FLAG_REVIEW = "http://fhir-gateway.org/fhir/StructureDefinition/flag-review"
ACTIONS = {"acknowledged": "Acknowledged", "resolved": "Resolved"}


@dataclass(frozen=True, slots=True)
class AlertReview:
    action: str  # acknowledged | resolved
    by: str
    at: str  # in words
    at_iso: str
    raw_at: str
    note: str

    @property
    def words(self) -> str:
        return ACTIONS.get(self.action, self.action.capitalize())


def _parts(ext: dict[str, Any]) -> dict[str, Any]:
    return {str(p.get("url")): p for p in ext.get("extension") or [] if isinstance(p, dict)}


def reviews_of(reader: PatientReader, flag: dict[str, Any]) -> list[AlertReview]:
    out = []
    for ext in flag.get("extension") or []:
        if not isinstance(ext, dict) or ext.get("url") != FLAG_REVIEW:
            continue
        parts = _parts(ext)
        note = (parts.get("note") or {}).get("valueAnnotation") or {}
        by = note.get("authorReference") or {"display": note.get("authorString")}
        at = str(note.get("time") or "")
        out.append(
            AlertReview(
                action=str((parts.get("action") or {}).get("valueCode") or "acknowledged"),
                by=reader.who(by),
                at=reader.clock.when(at),
                at_iso=reader.clock.iso(at),
                raw_at=at,
                note=str(note.get("text") or ""),
            )
        )
    return out


def _review(action: str, user: str, note: str, at: str) -> dict[str, Any]:
    return {
        "url": FLAG_REVIEW,
        "extension": [
            {"url": "action", "valueCode": action},
            {"url": "note", "valueAnnotation": {"authorString": user, "time": at, "text": note}},
        ],
    }


def _flag_of(session: Session, caller: Caller, patient_id: str, flag_id: str) -> dict[str, Any]:
    """The caller's copy of the patient's active Flag; any other answers as "no such alert"."""
    missing = NotFound("This patient has no such open alert; it may have been resolved already.")
    try:
        flag = resources.read(session, "Flag", flag_id, caller).content
    except GatewayError as exc:
        raise missing from exc
    subject = (flag.get("subject") or {}).get("reference")
    if subject != f"Patient/{patient_id}" or flag.get("status") != "active":
        raise missing
    return flag


def review_alert(
    session: Session,
    caller: Caller,
    user: str,
    patient_id: str,
    flag_id: str,
    *,
    version: int,
    action: str,
    note: str,
) -> None:
    if action not in ACTIONS:
        raise NotFound(f"There is no action {action!r} for an alert.")
    flag = _flag_of(session, caller, patient_id, flag_id)
    now = clock.to_instant(clock.now())
    doc = {**flag, "extension": [*(flag.get("extension") or []), _review(action, user, note, now)]}
    if action == "resolved":
        doc |= {"status": "inactive", "period": {**(flag.get("period") or {}), "end": now}}
    stored = resources.update(session, "Flag", flag_id, doc, caller, if_match=version).stored
    assert stored is not None  # an update stores a version or raises
    record_provenance(
        session,
        caller,
        user,
        target=f"Flag/{flag_id}/_history/{stored.version_id}",
        activity=f"alert {action}",
        code="UPDATE",
    )
