"""The nominated representative (MHCA ss14–17): who it is, and whom the gateway proposes.

* The nominated representative is a RelatedPerson of the patient whose ``relationship`` carries
  ``MHCA_SYSTEM|nominated-representative`` (and that is active): appointed by the patient in
  writing (s14(1)), or confirmed by a case manager. For a minor, the legal guardian (s15(1)).
* When none was appointed, s14(4) deems, in this order: (a) the individual named in the advance
  directive (s5(1)(c), in the directive's own order); (b) a relative; (c) a care-giver; (d) a
  suitable person appointed by the Board; (e) the Director of the Department of Social Welfare,
  appointed by the Board. ``representative_candidates`` lists the people available in that order;
  the first is what the gateway *proposes* for a case manager to confirm: it never appoints
  anyone itself. (d) and (e) exist only by a Board order: they are candidates only when a
  RelatedPerson records that appointment (``MHCA_SYSTEM|board-appointed-representative`` or
  ``|social-welfare-director``); otherwise the proposal says to apply to the Board.
* Available: active, within its ``period``, and not a minor (s14(3)) when a birth date says so.
  Whether the person is willing is for the case manager to ask, hence the confirmation.
* Among relatives the Act sets no order; the gateway lists spouse or partner, parents, children,
  siblings, then other relatives (v3-RoleCode family codes, or a v2 table 0063 code), each group in
  the order the hospital sent them. A care-giver is a RelatedPerson coded ``caregiver`` (this code
  system) or v2 ``CGV``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date
from typing import Any

from fhir_gateway.privacy._mhca import (
    BOARD_APPOINTED,
    CAREGIVER,
    NOMINATED_REPRESENTATIVE,
    SOCIAL_WELFARE_DIRECTOR,
    has_mhca_code,
    mhca_coding,
)

__all__ = [
    "Candidate",
    "nominated_representative",
    "representative_candidates",
    "propose_representative",
    "as_nominated_representative",
    "is_relative",
    "is_caregiver",
    "is_minor",
]

_V3_ROLE = "http://terminology.hl7.org/CodeSystem/v3-RoleCode"
_V2_0063 = "http://terminology.hl7.org/CodeSystem/v2-0063"
# v3-RoleCode family members, closest first (the Act sets no order among relatives: s14(4)(b))
_RELATIVES: tuple[frozenset[str], ...] = (
    frozenset({"SPS", "HUSB", "WIFE", "DOMPART", "SIGOTHR"}),
    frozenset({"PRN", "MTH", "FTH", "NPRN", "NMTH", "NFTH", "STPPRN", "STPMTH", "STPFTH"}),
    frozenset({"CHILD", "SON", "DAU", "NCHILD", "CHLDADOPT", "STPCHLD", "SONADOPT", "DAUADOPT"}),
    frozenset({"SIB", "BRO", "SIS", "NSIB", "NBRO", "NSIS", "HSIB", "STPSIB"}),
    frozenset(
        {"GRPRN", "GRMTH", "GRFTH", "GRNDCHILD", "AUNT", "UNCLE", "COUSN", "NIECE", "NEPHEW"}
        | {"FAMMEMB", "EXT", "INLAW", "MTHINLAW", "FTHINLAW", "SIBINLAW", "SONINLAW", "DAUINLAW"}
    ),
)
_V2_RELATIVES = frozenset({"SPO", "DOM", "PAR", "MTH", "FTH", "CHD", "SIB", "BRO", "SIS", "GCH"})
_GUARDIAN = frozenset({"GUARD"})
_AGE_OF_MAJORITY = 18


@dataclass(frozen=True, slots=True)
class Candidate:
    person: str  # RelatedPerson/ID
    basis: str  # the provision: "s14(4)(b)", "s15(1)", …
    why: str  # in words, for the case manager


def _codes(person: dict[str, Any], system: str) -> list[str]:
    return [
        str(c.get("code"))
        for concept in person.get("relationship") or []
        if isinstance(concept, dict)
        for c in concept.get("coding") or []
        if isinstance(c, dict) and c.get("system") == system and c.get("code")
    ]


def _ref(person: dict[str, Any]) -> str:
    return f"RelatedPerson/{person.get('id')}"


def _name(person: dict[str, Any]) -> str:
    for name in person.get("name") or []:
        text = name.get("text") or " ".join([*name.get("given", []), name.get("family", "")])
        if text.strip():
            return text.strip()
    return _ref(person)


def is_minor(person: dict[str, Any], on: date) -> bool:
    born = str(person.get("birthDate") or "")
    if len(born) < 4 or not born[:4].isdigit():
        return False  # not known: the case manager asks
    year, month, day = int(born[:4]), int(born[5:7] or 1), int(born[8:10] or 1)
    try:
        birthday = date(year + _AGE_OF_MAJORITY, month, day)
    except ValueError:  # 29 February
        birthday = date(year + _AGE_OF_MAJORITY, 3, 1)
    return on < birthday


def _available(person: dict[str, Any], on: date) -> bool:
    if person.get("active") is False or is_minor(person, on):
        return False
    end = str((person.get("period") or {}).get("end") or "")
    return not end or end[:10] >= on.isoformat()


def _rank(person: dict[str, Any]) -> int | None:
    """Closeness of a relative (0: spouse … 4: other relatives), None when not a relative."""
    v3 = set(_codes(person, _V3_ROLE))
    for rank, group in enumerate(_RELATIVES):
        if v3 & group:
            return rank
    return len(_RELATIVES) - 1 if set(_codes(person, _V2_0063)) & _V2_RELATIVES else None


def is_caregiver(person: dict[str, Any]) -> bool:
    return has_mhca_code(person.get("relationship"), CAREGIVER) or "CGV" in _codes(person, _V2_0063)


def is_relative(person: dict[str, Any]) -> bool:
    return not is_caregiver(person) and _rank(person) is not None


def _has_role(person: dict[str, Any], code: str) -> bool:
    return has_mhca_code(person.get("relationship"), code)


def nominated_representative(related_persons: Iterable[dict[str, Any]]) -> str | None:
    """The patient's nominated representative (``RelatedPerson/ID``), if one is recorded."""
    for person in related_persons:
        if person.get("active") is not False and _has_role(person, NOMINATED_REPRESENTATIVE):
            return _ref(person)
    return None


def _relationship_words(person: dict[str, Any]) -> str:
    for concept in person.get("relationship") or []:
        for c in concept.get("coding") or []:
            if c.get("display"):
                return str(c["display"]).lower()
    return "relative"


def representative_candidates(
    related_persons: Iterable[dict[str, Any]],
    named_in_directives: Iterable[str],
    *,
    patient_birth_date: str | None,
    on: date,
) -> list[Candidate]:
    """Everyone who may be proposed as nominated representative, in the Act's order (s14(4);
    s15 for a minor). ``named_in_directives``: the ``RelatedPerson/ID``s the patient's advance
    directives name as representative, in their order of precedence."""
    people = [p for p in related_persons if _available(p, on)]
    by_ref = {_ref(p): p for p in people}
    if is_minor({"birthDate": patient_birth_date}, on):
        return [
            Candidate(_ref(p), "s15(1)", f"{_name(p)}, legal guardian of a minor")
            for p in people
            if set(_codes(p, _V3_ROLE)) & _GUARDIAN or "GRD" in _codes(p, _V2_0063)
        ]
    out = [
        Candidate(ref, "s14(4)(a)", f"{_name(by_ref[ref])}, named in the advance directive")
        for ref in dict.fromkeys(named_in_directives)
        if ref in by_ref
    ]
    relatives = sorted(
        (p for p in people if is_relative(p)), key=lambda p: _rank(p) or 0
    )  # sorted() is stable: the hospital's order within a group
    out += [
        Candidate(_ref(p), "s14(4)(b)", f"{_name(p)}, {_relationship_words(p)} (relative)")
        for p in relatives
    ]
    out += [
        Candidate(_ref(p), "s14(4)(c)", f"{_name(p)}, care-giver")
        for p in people
        if is_caregiver(p)
    ]
    for code, basis, what in (
        (BOARD_APPOINTED, "s14(4)(d)", "appointed by the Board"),
        (
            SOCIAL_WELFARE_DIRECTOR,
            "s14(4)(e)",
            "Director of Social Welfare, appointed by the Board",
        ),
    ):
        out += [
            Candidate(_ref(p), basis, f"{_name(p)}, {what}") for p in people if _has_role(p, code)
        ]
    first: dict[str, Candidate] = {}
    for candidate in out:
        first.setdefault(candidate.person, candidate)  # each person once, on the earliest basis
    return list(first.values())


def propose_representative(
    related_persons: list[dict[str, Any]],
    named_in_directives: Iterable[str],
    *,
    patient_birth_date: str | None,
    on: date,
) -> tuple[Candidate | None, list[Candidate]]:
    """(the first candidate, all of them) when no nominated representative is recorded;
    (None, []) when one is. The gateway proposes; a case manager confirms."""
    if nominated_representative(related_persons) is not None:
        return None, []
    candidates = representative_candidates(
        related_persons, named_in_directives, patient_birth_date=patient_birth_date, on=on
    )
    return (candidates[0] if candidates else None), candidates


def as_nominated_representative(person: dict[str, Any], basis: str) -> dict[str, Any]:
    """The RelatedPerson with the nominated-representative role (confirmed on ``basis``)."""
    if _has_role(person, NOMINATED_REPRESENTATIVE):
        return person
    role = {
        "coding": [mhca_coding(NOMINATED_REPRESENTATIVE)],
        "text": f"Nominated representative ({basis})",
    }
    return {**person, "relationship": [*(person.get("relationship") or []), role]}
