"""The AHC-HRSN → SDOH map, read from a stored ConceptMap (pure: the map is data the user edits).

``ConceptMap/ahc-hrsn-sdoh`` (``mappings/assessments``) has two groups from LOINC to the Gravity
SDOH domains (SDOHCC temporary codes):

- elements without ``dependsOn``: a question (LOINC) → the domain of its screening-response
  Observation;
- elements whose targets have ``dependsOn`` (the question): a positive answer (LOINC answer code)
  → the domain of the health concern it raises; the target's ``product``s are the Condition's
  codes (SNOMED CT, ICD-10-CM).

An answer that no target maps for its question is negative. ``sourceUri`` names the Questionnaire
the map applies to.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

__all__ = ["SDOH_MAP_URL", "SDOHCC", "SdohConcern", "SdohMap", "read_map"]

SDOH_MAP_URL = "http://fhir-gateway.org/fhir/ConceptMap/ahc-hrsn-sdoh"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
_MAX_ELEMENTS = 1000


@dataclass(frozen=True, slots=True)
class SdohConcern:
    domain: dict[str, str]  # the SDOHCC coding
    codes: tuple[dict[str, str], ...]  # the Condition's codings


@dataclass(slots=True)
class SdohMap:
    questionnaire: str
    domains: dict[str, dict[str, str]] = field(default_factory=dict)  # question → SDOHCC coding
    positive: dict[tuple[str, str], SdohConcern] = field(default_factory=dict)  # (question, answer)

    def domain(self, question: str) -> dict[str, str] | None:
        return self.domains.get(question)

    def concern(self, question: str, answer: str) -> SdohConcern | None:
        return self.positive.get((question, answer))


def _coding(system: str, target: dict[str, Any]) -> dict[str, str]:
    coding = {"system": system, "code": str(target.get("code", ""))}
    if target.get("display"):
        coding["display"] = str(target["display"])
    return coding


def read_map(doc: dict[str, Any]) -> SdohMap:
    """The map of a stored ConceptMap (elements past the bound are ignored)."""
    out = SdohMap(str(doc.get("sourceUri") or doc.get("sourceCanonical") or ""))
    count = 0
    for group in doc.get("group", []):
        system = str(group.get("target") or SDOHCC)
        for element in group.get("element", []):
            count += 1
            if count > _MAX_ELEMENTS:
                return out
            for target in element.get("target", []):
                if target.get("equivalence") in ("unmatched", "disjoint") or not target.get("code"):
                    continue
                questions = [
                    str(d.get("value")) for d in target.get("dependsOn", []) if d.get("value")
                ]
                if not questions:
                    out.domains[str(element.get("code"))] = _coding(system, target)
                    continue
                codes = tuple(
                    {
                        "system": str(p.get("system", "")),
                        "code": str(p.get("value", "")),
                        **({"display": str(p["display"])} if p.get("display") else {}),
                    }
                    for p in target.get("product", [])
                    if p.get("value")
                )
                for question in questions:
                    out.positive[(question, str(element.get("code")))] = SdohConcern(
                        _coding(system, target), codes
                    )
    return out
