"""The safety-plan Questionnaire and what a response to it says, section by section. Pure: JSON in,
sections out (no database).

    questionnaire = shipped_questionnaire()         # mappings/assessments/Questionnaire-safety-plan.json
    for section in sections_of(response, questionnaire):
        print(section.step, section.title, [e.text for e in section.entries])

A section's entries are the patient's own words in the order given: a line of text, or a person
or service with a phone number (the repeating name/phone groups). ``problems`` names what makes a
response unusable as a safety plan (a section it does not have, too many entries, an answer too
long), so that the write is refused with the reason instead of a plan printed in part.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import mappings

__all__ = [
    "QUESTIONNAIRE_URL",
    "SAFETY_PLAN_SYSTEM",
    "MAX_ENTRIES",
    "MAX_TEXT",
    "Entry",
    "Section",
    "shipped_questionnaire",
    "is_safety_plan",
    "response_of",
    "sections_of",
    "problems",
]

GATEWAY = "http://fhir-gateway.org/fhir"
QUESTIONNAIRE_URL = f"{GATEWAY}/Questionnaire/safety-plan"
SAFETY_PLAN_SYSTEM = f"{GATEWAY}/CodeSystem/safety-plan"
MAX_ENTRIES = 30  # per section: a plan a person can read in a crisis, and a bound on the input
MAX_TEXT = 1000  # characters of one answer (the Questionnaire's maxLength is tighter for most)
_SHIPPED = Path(mappings.__file__).parent / "assessments" / "Questionnaire-safety-plan.json"


@dataclass(frozen=True, slots=True)
class Entry:
    text: str
    phone: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    link_id: str
    step: str  # "Step 1" … "Step 6"; "" for the closing section
    title: str
    entries: tuple[Entry, ...]


@cache
def _shipped_text() -> str:
    return _SHIPPED.read_text(encoding="utf-8")


def shipped_questionnaire() -> dict[str, Any]:
    """A fresh copy of the shipped Questionnaire (callers may change theirs)."""
    return json.loads(_shipped_text())  # type: ignore[no-any-return]


def is_safety_plan(response: dict[str, Any] | None) -> bool:
    """A QuestionnaireResponse to the safety-plan Questionnaire (any version of it)."""
    canonical = str((response or {}).get("questionnaire") or "")
    return canonical.split("|", 1)[0] == QUESTIONNAIRE_URL


def response_of(plan: dict[str, Any]) -> str | None:
    """The ``QuestionnaireResponse/ID`` a safety-plan CarePlan was made from (its supportingInfo)."""
    for info in _list(plan.get("supportingInfo")):
        reference = str(info.get("reference") or "")
        if reference.startswith("QuestionnaireResponse/"):
            return reference
    return None


def _list(value: Any) -> list[Any]:
    """A JSON array's members that are objects (anything else reads as empty)."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _groups(questionnaire: dict[str, Any]) -> list[dict[str, Any]]:
    return [i for i in _list(questionnaire.get("item")) if i.get("linkId")]


def _answers(item: dict[str, Any]) -> list[str]:
    out = []
    for answer in _list(item.get("answer")):
        value = answer.get("valueString")
        if isinstance(value, str) and value.strip():
            out.append(value.strip())
    return out


def _entries(items: list[dict[str, Any]]) -> list[Entry]:
    """The entries of one section's answered items, in order (a contact: its name and phone)."""
    found: list[Entry] = []
    for item in items:
        children = _list(item.get("item"))
        if children:
            fields = {str(c.get("linkId", "")).rsplit(".", 1)[-1]: _answers(c) for c in children}
            name = " ".join(fields.get("name") or [])
            phone = " ".join(fields.get("phone") or [])
            if name or phone:
                found.append(Entry(name or phone, phone if name else ""))
        else:
            found.extend(Entry(text) for text in _answers(item))
    return found


def _answered(response: dict[str, Any], link_id: str) -> list[dict[str, Any]]:
    return [
        child
        for top in _list(response.get("item"))
        if top.get("linkId") == link_id
        for child in _list(top.get("item"))
    ]


def sections_of(response: dict[str, Any], questionnaire: dict[str, Any]) -> list[Section]:
    """Every section of the Questionnaire, with what the response says in it (maybe nothing)."""
    return [
        Section(
            link_id=str(group["linkId"]),
            step=str(group.get("prefix") or ""),
            title=str(group.get("text") or group["linkId"]),
            entries=tuple(_entries(_answered(response, str(group["linkId"])))[:MAX_ENTRIES]),
        )
        for group in _groups(questionnaire)
    ]


def problems(response: dict[str, Any], questionnaire: dict[str, Any]) -> list[str]:
    """Why this response cannot be kept as a safety plan, in words (empty: it can)."""
    known = {str(g["linkId"]) for g in _groups(questionnaire)}
    found = []
    for top in _list(response.get("item")):
        link_id = str(top.get("linkId", ""))
        if link_id not in known:
            found.append(f"The safety plan has no section {link_id[:40]!r}.")
    for section in known:
        entries = _entries(_answered(response, section))
        if len(entries) > MAX_ENTRIES:
            found.append(f"Section {section!r} has {len(entries)} entries; at most {MAX_ENTRIES}.")
        if any(len(e.text) + len(e.phone) > MAX_TEXT for e in entries):
            found.append(f"An answer in section {section!r} is longer than {MAX_TEXT} characters.")
    return found
