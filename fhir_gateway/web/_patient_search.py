"""Finding a patient from the worklist: one box that takes a name, an MRN or a birth date.

A birth date (``1980-02-03``, ``3 Feb 1980``, ``February 3, 1980``) searches ``birthdate``;
anything else searches ``name`` (each word: the start of a name part) and ``identifier`` (an MRN,
any assigning authority). Through the store's search with the user's Caller; one page of
``PAGE_SIZE`` results is read whole.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.store.search import match_fields
from fhir_gateway.web._display import Names, human_name

__all__ = ["Found", "PatientResults", "find_patients", "as_birth_date", "PAGE_SIZE", "MAX_QUERY"]

PAGE_SIZE = 20
MAX_QUERY = 100
_MR = "MR"
_FORMATS = ("%Y-%m-%d", "%d %b %Y", "%d %B %Y", "%b %d %Y", "%B %d %Y", "%b %d, %Y", "%B %d, %Y")
_SAFE = re.compile(r"[\\,$|]")  # search syntax characters: a name or MRN never needs them


@dataclass(frozen=True, slots=True)
class Found:
    patient_id: str
    name: str
    born: str
    mrn: str


@dataclass(frozen=True, slots=True)
class PatientResults:
    query: str
    by: str  # "birth date" | "name or MRN"
    found: list[Found]
    total: int
    page: int
    pages: int


def as_birth_date(text: str) -> date | None:
    for pattern in _FORMATS:
        try:
            return datetime.strptime(text.strip(), pattern).date()
        except ValueError:
            continue
    return None


def _born(text: object) -> str:
    try:
        day = date.fromisoformat(str(text))
    except ValueError:
        return str(text) if text else "unknown"
    return f"{day.day} {day:%b} {day.year}"


def _mrn(identifiers: list[dict[str, object]]) -> str:
    def is_mr(i: dict[str, object]) -> bool:
        kind = i.get("type")
        codings = kind.get("coding", []) if isinstance(kind, dict) else []
        return any(isinstance(c, dict) and c.get("code") == _MR for c in codings)

    chosen = next((i for i in identifiers if is_mr(i)), identifiers[0] if identifiers else {})
    return str(chosen.get("value") or "")


def find_patients(session: Session, caller: Caller, query: str, page: int) -> PatientResults:
    text = " ".join(_SAFE.sub(" ", query[:MAX_QUERY]).split())
    born = as_birth_date(text)
    fields = {"family": ("name", 0, "family")}
    if born is not None:
        by, params = "birth date", [[("birthdate", born.isoformat())]]
    else:
        by = "name or MRN"
        params = [[("name", word) for word in text.split()], [("identifier", text)]]
    ids: dict[str, str] = {}
    for criteria in params:
        if criteria and all(value for _, value in criteria):
            for row in match_fields(session, "Patient", criteria, fields, caller=caller):
                ids[row["id"]] = row["family"] or ""
    ordered = sorted(ids, key=lambda i: (ids[i].casefold(), i))
    pages = max(1, -(-len(ordered) // PAGE_SIZE))
    page = min(max(1, page), pages)
    names = Names(session, caller)
    chosen = [f"Patient/{i}" for i in ordered[(page - 1) * PAGE_SIZE : page * PAGE_SIZE]]
    names.prefetch(chosen)
    found = []
    for ref in chosen:
        patient = names.resource(ref) or {}
        found.append(
            Found(
                ref.split("/", 1)[1],
                human_name(patient.get("name")) or "(no name)",
                _born(patient.get("birthDate")),
                _mrn(patient.get("identifier") or []),
            )
        )
    return PatientResults(text, by, found, len(ordered), page, pages)
