"""India's Mental Healthcare Act 2017 (MHCA): which facilities follow it, and the codes that say so.

* A sender is a mental health establishment under the Act (an *MHCA facility*) when its facility
  is in India (``jurisdiction.country_of``: ``sender_countries``, else ``default_country``), unless
  ``mhca_senders`` names the senders explicitly ('APP|FACILITY', 'FACILITY' or a FHIR source
  endpoint; ``*``: every sender). An MHCA facility is never a 42 CFR Part 2 program (``_part2``).
  Named lists beat the country: with ``mhca_senders`` unset, a sender ``part2_senders`` names is
  a Part 2 program and not an MHCA facility; a sender ``mhca_senders`` names is never Part 2.
* What an MHCA facility's patient has is labelled with the policy code ``MHCA2017``; the Act's
  rules (``_mhca_representative``, ``_mhca_directives``, ``_mhca_discharge``, ``_mhca_records``)
  apply to data so labelled.
* ``MHCA_SYSTEM`` (``http://fhir-gateway.org/fhir/CodeSystem/mhca-2017``, stable: clients code
  with it) holds that label, the roles the Act gives people, the sections a recorded release or
  withholding rests on, and the capacity assessment an advance directive depends on
  (``mhca_codesystem()`` is the CodeSystem resource). HL7 has no code for these: v3-RoleCode's
  healthcare power of attorney is not the Act's nominated representative, whose duties the Act
  itself sets (s17).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from fhir_gateway.jurisdiction import IN, country_of
from fhir_gateway.settings import Settings

__all__ = [
    "MHCA_SYSTEM",
    "MHCA",
    "NOMINATED_REPRESENTATIVE",
    "BOARD_APPOINTED",
    "SOCIAL_WELFARE_DIRECTOR",
    "CAREGIVER",
    "RESIDES_WITH",
    "PREFERRED_CONTACT",
    "CAPACITY",
    "mhca_coding",
    "has_mhca_code",
    "is_mhca_sender",
    "is_mhca",
    "consent_in_force",
    "mhca_codesystem",
]

MHCA_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/mhca-2017"

# code → (display, definition); the sections' codes are the records module's (s23, s25)
_CONCEPTS: dict[str, tuple[str, str]] = {
    "MHCA2017": (
        "Mental Healthcare Act 2017 (India)",
        "Security label (policy): data of a patient of a mental health establishment in India; "
        "the Act's confidentiality (s23) and access rules (s25) apply.",
    ),
    "nominated-representative": (
        "Nominated representative",
        "The person appointed by the patient (s14(1)), named in the advance directive "
        "(s5(1)(c)), or confirmed by the case manager from the order of s14(4); for a minor the "
        "legal guardian (s15).",
    ),
    "board-appointed-representative": (
        "Representative appointed by the Board",
        "A suitable person the Mental Health Review Board appointed as nominated "
        "representative by its order (s14(4)(d)).",
    ),
    "social-welfare-director": (
        "Director, Department of Social Welfare",
        "The Director of the Department of Social Welfare (or his designated representative), "
        "appointed by the Board when no one else is available (s14(4)(e)).",
    ),
    "caregiver": (
        "Care-giver",
        "A person who resides with the patient and is responsible for providing care, "
        "a relative or another person, paid or not (s2(1)(e)).",
    ),
    "resides-with": (
        "Resides with the patient after discharge",
        "The family member or care-giver with whom the patient will reside on discharge, "
        "consulted on the discharge plan (s98(1)).",
    ),
    "preferred-contact": (
        "Preferred contact",
        "A person the patient's advance directive asks to be contacted and involved.",
    ),
    "capacity": (
        "Capacity to make mental healthcare and treatment decisions",
        "Observation (valueBoolean): whether the patient has the capacity of s4; an advance "
        "directive applies only while the patient lacks it (s5(3)).",
    ),
    "s23-2-a": ("s23(2)(a) nominated representative", "Release to the nominated representative."),
    "s23-2-b": (
        "s23(2)(b) care and treatment",
        "Release to mental health and other health professionals providing care and treatment.",
    ),
    "s23-2-c": (
        "s23(2)(c) protection from harm",
        "Release necessary to protect another person from harm or violence; only the information "
        "necessary to protect against the harm identified (s23(2)(d)).",
    ),
    "s23-2-e": (
        "s23(2)(e) threat to life",
        "Release of only the information necessary to prevent threat to life.",
    ),
    "s23-2-f": (
        "s23(2)(f) order",
        "Release upon an order of the Board, the Central Authority, a High Court, the Supreme "
        "Court or another competent statutory authority.",
    ),
    "s23-2-g": (
        "s23(2)(g) public safety",
        "Release in the interests of public safety and security.",
    ),
    "s25-2-a": (
        "s25(2)(a) serious mental harm",
        "Information withheld from the patient because its disclosure would result in serious "
        "mental harm to the patient.",
    ),
    "s25-2-b": (
        "s25(2)(b) harm to others",
        "Information withheld from the patient because its disclosure would result in the "
        "likelihood of harm to other persons.",
    ),
}

NOMINATED_REPRESENTATIVE = "nominated-representative"
BOARD_APPOINTED = "board-appointed-representative"
SOCIAL_WELFARE_DIRECTOR = "social-welfare-director"
CAREGIVER = "caregiver"
RESIDES_WITH = "resides-with"
PREFERRED_CONTACT = "preferred-contact"
CAPACITY = "capacity"


def mhca_coding(code: str) -> dict[str, str]:
    return {"system": MHCA_SYSTEM, "code": code, "display": _CONCEPTS[code][0]}


MHCA = mhca_coding("MHCA2017")


def has_mhca_code(concepts: Any, code: str) -> bool:
    """Does a CodeableConcept, or a list of them, carry ``MHCA_SYSTEM|code``?"""
    items = concepts if isinstance(concepts, list) else [concepts]
    return any(
        c.get("system") == MHCA_SYSTEM and c.get("code") == code
        for concept in items
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict)
    )


def _listed(listed: list[str], sender: str) -> bool:
    return "*" in listed or sender in listed or sender.rpartition("|")[2] in listed


def is_mhca_sender(settings: Settings, *senders: str | None) -> bool:
    """Is what these senders (any of them) sent the data of a mental health establishment under
    the Act? Unknown senders take the default country."""
    known = [s for s in senders if s]
    if settings.mhca_senders is not None:
        return any(_listed(settings.mhca_senders, s) for s in known) or (
            not known and "*" in settings.mhca_senders
        )
    if settings.part2_senders is not None:  # a named Part 2 program is no MHCA facility
        named = settings.part2_senders
        if known and all(_listed(named, s) for s in known):
            return False
        known = [s for s in known if not _listed(named, s)]
    if not known:
        return country_of(settings, None) == IN
    return any(country_of(settings, s) == IN for s in known)


def is_mhca(labelled: dict[str, Any] | Iterable[dict[str, Any]] | None) -> bool:
    """Does a resource (or a list of security labels) carry the Act's policy label?"""
    if isinstance(labelled, dict):
        labelled = ((labelled.get("meta") or {}).get("security")) or []
    return any(
        isinstance(lb, dict) and lb.get("system") == MHCA_SYSTEM and lb.get("code") == MHCA["code"]
        for lb in labelled or []
    )


def _moment(value: Any, *, end: bool = False) -> datetime | None:
    if not isinstance(value, str) or len(value) < 4:
        return None
    text = value if "T" in value else f"{value[:10]}{'T23:59:59' if end else 'T00:00:00'}"
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def consent_in_force(consent: dict[str, Any], at: datetime) -> bool:
    """An ``active`` Consent within its provision's period (a date's end is the whole day)."""
    if consent.get("status") != "active":
        return False
    period = (consent.get("provision") or {}).get("period") or {}
    start, end = _moment(period.get("start")), _moment(period.get("end"), end=True)
    if (period.get("start") and start is None) or (period.get("end") and end is None):
        return False  # a bound that cannot be read: the protective answer
    return (start is None or start <= at) and (end is None or at <= end)


def mhca_codesystem() -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": "mhca-2017",
        "url": MHCA_SYSTEM,
        "version": "1",
        "name": "MentalHealthcareAct2017",
        "title": "fhir-gateway codes for India's Mental Healthcare Act 2017",
        "status": "active",
        "experimental": False,
        "publisher": "fhir-gateway",
        "description": "The policy label of MHCA data, the people the Act names (nominated "
        "representative, care-giver, …), the sections releases (s23(2)) and withholdings (s25(2)) "
        "rest on, and the capacity assessment (s4, s5(3)).",
        "caseSensitive": True,
        "content": "complete",
        "count": len(_CONCEPTS),
        "concept": [
            {"code": c, "display": d, "definition": text} for c, (d, text) in _CONCEPTS.items()
        ],
    }
