"""What every section of the patient page reads with: the page's Caller, one name cache, the
facility's clock, and searches bounded per type (a long history shows its newest rows, never an
unbounded query)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_ids
from fhir_gateway.web._display import Display, Names

__all__ = ["PatientReader", "ROWS_PER_SECTION", "codings", "concept_text"]

ROWS_PER_SECTION = 200  # per resource type: a patient's record, not a registry


@dataclass(slots=True)
class PatientReader:
    session: Session
    caller: Caller
    settings: Settings
    patient_id: str
    names: Names
    clock: Display

    @classmethod
    def open(
        cls, session: Session, caller: Caller, settings: Settings, patient_id: str
    ) -> PatientReader:
        return cls(
            session,
            caller,
            settings,
            patient_id,
            Names(session, caller),
            Display.for_settings(settings),
        )

    @property
    def patient_ref(self) -> str:
        return f"Patient/{self.patient_id}"

    def find(self, res_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """The resources matching ``params`` that this caller may see (their served copies)."""
        ids = match_ids(self.session, res_type, params, caller=self.caller, limit=ROWS_PER_SECTION)
        refs = [f"{res_type}/{i}" for i in ids]
        self.names.prefetch(refs)
        return [doc for doc in (self.names.resource(r) for r in refs) if doc is not None]

    def of_patient(self, res_type: str, param: str = "patient") -> list[dict[str, Any]]:
        return self.find(res_type, [(param, self.patient_ref)])

    def who(self, reference: dict[str, Any] | None, *, missing: str = "someone") -> str:
        """A person or organisation by name: a reference's resource, else its display; the
        gateway's own client id reads as "the gateway", a web user's as the user's name."""
        if not reference:
            return missing
        display = str(reference.get("display") or "")
        if not reference.get("reference"):
            if display == "fhir-gateway":
                return "the gateway"
            return display.removeprefix("user:") or missing
        return self.names.of(reference, missing=display or missing)


def codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def concept_text(concept: Any, missing: str = "") -> str:
    """What a CodeableConcept says to a person: its text, else a coding's display, else code."""
    if not isinstance(concept, dict):
        return missing
    if concept.get("text"):
        return str(concept["text"])
    for coding in codings(concept):
        if coding.get("display"):
            return str(coding["display"])
    for coding in codings(concept):
        if coding.get("code"):
            return str(coding["code"])
    return missing
