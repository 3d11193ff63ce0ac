"""Labels of medication data, the same way as diagnoses (``_labels``).

A MedicationRequest, MedicationDispense, MedicationAdministration or MedicationStatement of a
medicine for opioid or alcohol use disorder (``mappings/privacy/substance-use-medications.json``:
by code, or by an ingredient or brand name in its text or displays) is substance-use data: ETH and
PSY, and from a Part 2 sender also R and 42CFRPart2. A drug sent as text alone that no name
recognises, from a Part 2 sender, carries R/ETH/42CFRPart2 until it is coded (what it names may
be such a medicine). Other medication data carry no label of their own here.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from typing import Any

from fhir_gateway.privacy._labels import ETH, PART2, PSY, RESTRICTED

__all__ = [
    "MEDICATION_TYPES",
    "medication_labels",
    "is_substance_use_medication",
    "is_uncoded_drug",
]

MEDICATION_TYPES = frozenset(
    {"MedicationRequest", "MedicationDispense", "MedicationAdministration", "MedicationStatement"}
)
_WORD = re.compile(r"[a-z]+")


@dataclass(frozen=True, slots=True)
class _Recogniser:
    codes: frozenset[tuple[str, str]]  # (system, code)
    prefixes: tuple[tuple[str, str], ...]  # (system, code prefix) of is-a filters
    names: frozenset[str]  # lower-case single words (ingredients, brands)


@cache
def _recogniser() -> _Recogniser:
    doc = json.loads(
        (files("mappings") / "privacy" / "substance-use-medications.json").read_text("utf-8")
    )
    codes: set[tuple[str, str]] = set()
    prefixes: list[tuple[str, str]] = []
    names: set[str] = set()
    for include in (doc.get("compose") or {}).get("include") or []:
        system = str(include.get("system") or "")
        for concept in include.get("concept") or []:
            codes.add((system, str(concept.get("code"))))
            labels = [concept.get("display") or ""]
            labels += [d.get("value") or "" for d in concept.get("designation") or []]
            for label in labels:
                words = _WORD.findall(label.lower())
                if len(words) == 1:  # an ingredient or brand name, not a product's full name
                    names.add(words[0])
        for f in include.get("filter") or []:
            if f.get("op") == "is-a" and f.get("value"):
                prefixes.append((system, str(f["value"])))
    return _Recogniser(frozenset(codes), tuple(prefixes), frozenset(names))


def _concept(resource: dict[str, Any]) -> dict[str, Any]:
    concept = resource.get("medicationCodeableConcept")
    return concept if isinstance(concept, dict) else {}


def _codings(concept: dict[str, Any]) -> list[dict[str, Any]]:
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def is_substance_use_medication(resource: dict[str, Any]) -> bool:
    """Is the medicine one for opioid or alcohol use disorder (by code, or by name)?"""
    known = _recogniser()
    concept = _concept(resource)
    texts = [str(concept.get("text") or "")]
    for coding in _codings(concept):
        system, code = str(coding.get("system") or ""), str(coding.get("code") or "")
        if (system, code) in known.codes:
            return True
        if any(system == s and code.startswith(p) for s, p in known.prefixes):
            return True
        texts.append(str(coding.get("display") or ""))
    return any(w in known.names for t in texts for w in _WORD.findall(t.lower()))


def is_uncoded_drug(resource: dict[str, Any]) -> bool:
    """A drug in words only: text or a display, but no coding with a code."""
    concept = _concept(resource)
    codings = _codings(concept)
    if any(str(c.get("code") or "").strip() for c in codings):
        return False
    return bool(str(concept.get("text") or "").strip() or any(c.get("display") for c in codings))


def medication_labels(resource: dict[str, Any], *, part2: bool) -> list[dict[str, Any]]:
    """The labels medication data carry, ``part2`` being whether its sender is a Part 2 program."""
    if resource.get("resourceType") not in MEDICATION_TYPES:
        return []
    if is_substance_use_medication(resource):
        if part2:
            return [dict(RESTRICTED), dict(ETH), dict(PART2), dict(PSY)]
        return [dict(ETH), dict(PSY)]
    if part2 and is_uncoded_drug(resource):
        return [dict(RESTRICTED), dict(ETH), dict(PART2)]
    return []
