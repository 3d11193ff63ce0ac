"""Security labels (DESIGN, Privacy): which labels a diagnosis or a care-plan activity carries.

* A Condition coded ICD-10 F10–F19 but F17 (substance use, tobacco excluded) is substance-use
  data: sensitivity ETH and PSY; from a Part 2 sender (``_part2``) also confidentiality R and
  policy 42CFRPart2.
* Any other F code (mental and behavioural disorders) is mental-health data: PSY.
* A diagnosis with text but no code cannot be recognised by a code rule: from a Part 2 sender it
  carries R, ETH and 42CFRPart2 until it is coded (what it says may be a substance-use diagnosis).
* A care-plan activity derived from a substance-use template is labelled like a substance-use
  diagnosis; any other activity is PSY.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "CONFIDENTIALITY",
    "ACT_CODE",
    "PSY",
    "RESTRICTED",
    "ETH",
    "PART2",
    "NORDSCLCD",
    "PSYTHPN",
    "SENSITIVE",
    "INHERITED",
    "SUBSTANCE_USE",
    "is_substance_use",
    "is_uncoded",
    "condition_labels",
    "activity_labels",
    "counselling_note_labels",
    "labels_of",
    "label_codes",
    "merge_labels",
    "with_labels",
    "is_sensitive",
    "is_part2",
    "may_carry_text_of",
    "reference_to",
    "needs_consent",
    "LABEL_SOURCES",
    "ALWAYS_INHERITS",
]

CONFIDENTIALITY = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality"
ACT_CODE = "http://terminology.hl7.org/CodeSystem/v3-ActCode"

PSY = {"system": ACT_CODE, "code": "PSY", "display": "psychiatry information sensitivity"}
RESTRICTED = {"system": CONFIDENTIALITY, "code": "R", "display": "restricted"}
ETH = {"system": ACT_CODE, "code": "ETH", "display": "substance abuse information sensitivity"}
PART2 = {"system": ACT_CODE, "code": "42CFRPart2", "display": "42 CFR Part2"}
NORDSCLCD = {
    "system": ACT_CODE,
    "code": "NORDSCLCD",
    "display": "no redisclosure without consent directive",
}

# SUD counselling notes (42 CFR 2.11, 2024): kept apart like psychotherapy notes, whose
# v3-ActCode sensitivity they take.
PSYTHPN = {
    "system": ACT_CODE,
    "code": "PSYTHPN",
    "display": "psychotherapy note information sensitivity",
}

SENSITIVE = frozenset({"ETH", "42CFRPart2"})  # never to a partner without the patient's Consent
INHERITED = frozenset({"R", "ETH", "42CFRPart2"})  # what a resource derived from a diagnosis takes
SUBSTANCE_USE = "substance-use"  # the value of a care-plan template's sensitivity extension

# What a resource derived from a referral takes its INHERITED labels from, besides the Conditions
# it references: a Task from the ServiceRequest it fulfils (``focus``), a message on a referral
# from every Task, ServiceRequest and earlier message it names (its thread). A message always
# carries them, whatever labels its writer gave it: what it says about the referral goes only
# where the referral goes.
LABEL_SOURCES: dict[str, frozenset[str]] = {
    "Task": frozenset({"ServiceRequest"}),
    "Communication": frozenset({"Task", "ServiceRequest", "Communication"}),
}
ALWAYS_INHERITS = frozenset({"Communication"})

_ICD10 = re.compile(
    r"^(http://hl7\.org/fhir/sid/icd-10.*|urn:oid:2\.16\.840\.1\.113883\.6\.(3|90))$"
)
_SUBSTANCE = re.compile(r"^F1[0-9]")


def _icd10_codes(resource: dict[str, Any]) -> list[str]:
    codings = (resource.get("code") or {}).get("coding") or []
    return [
        str(c.get("code", "")).replace(".", "").upper()
        for c in codings
        if isinstance(c, dict) and _ICD10.match(str(c.get("system", "")))
    ]


def is_substance_use(code: str) -> bool:
    code = code.replace(".", "").upper()
    return bool(_SUBSTANCE.match(code)) and not code.startswith("F17")


def is_uncoded(condition: dict[str, Any]) -> bool:
    """A diagnosis in words only: text (or a coding's display) but no coding with a code."""
    concept = condition.get("code") or {}
    codings = [c for c in concept.get("coding") or [] if isinstance(c, dict)]
    if any(str(c.get("code") or "").strip() for c in codings):
        return False
    return bool(str(concept.get("text") or "").strip() or any(c.get("display") for c in codings))


def _substance_use_labels(part2: bool) -> list[dict[str, Any]]:
    return (
        [dict(RESTRICTED), dict(ETH), dict(PART2), dict(PSY)] if part2 else [dict(ETH), dict(PSY)]
    )


def condition_labels(condition: dict[str, Any], *, part2: bool) -> list[dict[str, Any]]:
    """The labels a diagnosis carries, ``part2`` being whether its sender is a Part 2 program."""
    codes = _icd10_codes(condition)
    if any(is_substance_use(c) for c in codes):
        return _substance_use_labels(part2)
    if any(c.startswith("F") for c in codes):
        return [dict(PSY)]
    if part2 and is_uncoded(condition):
        return [dict(RESTRICTED), dict(ETH), dict(PART2)]
    return []


def activity_labels(sensitivities: Iterable[str], *, part2: bool) -> list[dict[str, Any]]:
    """The labels of what a care-plan template derives (its ``sensitivity`` extension values)."""
    return _substance_use_labels(part2) if SUBSTANCE_USE in set(sensitivities) else [dict(PSY)]


def _type_codes(document: dict[str, Any]) -> set[str]:
    concept = document.get("type") or {}
    return {
        f"{c.get('system', '')}|{c.get('code', '')}"
        for c in (concept.get("coding") or [] if isinstance(concept, dict) else [])
        if isinstance(c, dict) and c.get("code")
    }


def counselling_note_labels(
    document: dict[str, Any], *, part2: bool, note_types: Iterable[str]
) -> list[dict[str, Any]]:
    """A DocumentReference whose ``type`` is one the sender names (``system|code``) is a SUD
    counselling note: from a Part 2 program it carries R, ETH, 42CFRPart2, PSYTHPN and PSY, and is
    kept apart from every other record (only a consent naming the notes releases it)."""
    if not part2 or document.get("resourceType") != "DocumentReference":
        return []
    if not _type_codes(document) & set(note_types):
        return []
    return [*_substance_use_labels(True), dict(PSYTHPN)]


def labels_of(resource: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        lb
        for lb in ((resource or {}).get("meta") or {}).get("security") or []
        if isinstance(lb, dict)
    ]


def label_codes(labels: Iterable[dict[str, Any] | str]) -> frozenset[str]:
    return frozenset(str(lb.get("code")) if isinstance(lb, dict) else str(lb) for lb in labels)


def is_sensitive(resource: dict[str, Any] | None) -> bool:
    return bool(label_codes(labels_of(resource)) & SENSITIVE)


def is_part2(resource: dict[str, Any] | None) -> bool:
    return "42CFRPart2" in label_codes(labels_of(resource))


def merge_labels(*label_lists: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: dict[tuple[str, str], dict[str, Any]] = {}
    for labels in label_lists:
        for label in labels:
            if isinstance(label, dict):
                seen.setdefault((str(label.get("system")), str(label.get("code"))), label)
    return list(seen.values())


def with_labels(resource: dict[str, Any], labels: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """A copy of ``resource`` whose ``meta.security`` also holds ``labels``."""
    merged = merge_labels(labels_of(resource), labels)
    if merged == labels_of(resource):
        return resource
    return {**resource, "meta": {**(resource.get("meta") or {}), "security": merged}}


def may_carry_text_of(
    source: dict[str, Any] | None, holder_labels: Iterable[dict[str, Any]]
) -> bool:
    """May text copied from ``source`` (a display, a description, a note) sit in a resource
    labelled ``holder_labels``? Only when the holder carries every label of the source: whoever
    may read the copy may then read the source's words anyway."""
    wanted = label_codes(labels_of(source)) - {NORDSCLCD["code"]}
    return wanted <= label_codes(holder_labels)


def reference_to(
    source: dict[str, Any], display: str | None, holder_labels: Iterable[dict[str, Any]]
) -> dict[str, Any]:
    """A Reference to ``source`` from a resource labelled ``holder_labels``, with ``display``
    only when that text may go where the holder goes."""
    ref: dict[str, Any] = {"reference": f"{source['resourceType']}/{source['id']}"}
    if display and may_carry_text_of(source, holder_labels):
        ref["display"] = display
    return ref


def needs_consent(labels: Iterable[dict[str, Any] | str]) -> bool:
    """Do data so labelled need the patient's Consent to go outside the care team?"""
    return bool(label_codes(labels) & SENSITIVE)
