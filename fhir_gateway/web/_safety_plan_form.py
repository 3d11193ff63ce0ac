"""The safety-plan form: the Questionnaire's sections as plain HTML fields, and the posted fields
back as a QuestionnaireResponse. Pure (no database).

A section's repeating line items (warning signs, coping, places, steps) are one text box, one
entry per line; its repeating name/phone groups are rows of two fields (the entries there are,
and two empty rows to add more); a ``text`` item is one text box. What the patient wrote last is
filled in, so an update starts from the current plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from fhir_gateway.assessments import MAX_ENTRIES, MAX_TEXT, QUESTIONNAIRE_URL

__all__ = ["FormField", "FormSection", "form_sections", "response_from_form"]

_SPARE_ROWS = 2


@dataclass(slots=True)
class FormField:
    kind: str  # lines | text | contacts | display
    name: str  # the item's linkId (the field names derive from it)
    label: str
    max_length: int
    value: str = ""  # lines and text
    rows: list[tuple[str, str]] = field(default_factory=list)  # contacts: (name, phone)
    error: str = ""


@dataclass(slots=True)
class FormSection:
    link_id: str
    step: str
    title: str
    fields: list[FormField]


def _kind(item: dict[str, Any]) -> str:
    if item.get("type") == "group":
        return "contacts"
    if item.get("type") == "display":
        return "display"
    return "lines" if item.get("repeats") else "text"


def _answered(response: dict[str, Any] | None, section: str, link_id: str) -> list[dict[str, Any]]:
    return [
        child
        for top in (response or {}).get("item") or []
        if top.get("linkId") == section
        for child in top.get("item") or []
        if child.get("linkId") == link_id
    ]


def _strings(item: dict[str, Any]) -> list[str]:
    return [str(a["valueString"]) for a in item.get("answer") or [] if "valueString" in a]


def _contact(item: dict[str, Any]) -> tuple[str, str]:
    parts = {
        str(c.get("linkId", "")).rsplit(".", 1)[-1]: _strings(c) for c in item.get("item") or []
    }
    return " ".join(parts.get("name") or []), " ".join(parts.get("phone") or [])


def _field(section: str, item: dict[str, Any], response: dict[str, Any] | None) -> FormField:
    kind, link_id = _kind(item), str(item["linkId"])
    found = FormField(kind, link_id, str(item.get("text") or ""), int(item.get("maxLength") or 0))
    answered = _answered(response, section, link_id)
    if kind == "contacts":
        found.rows = [_contact(i) for i in answered][:MAX_ENTRIES]
        found.rows += [("", "")] * _SPARE_ROWS
        found.max_length = min(
            (int(c.get("maxLength") or MAX_TEXT) for c in item.get("item") or []), default=MAX_TEXT
        )
    elif kind != "display":
        found.value = "\n".join(s for i in answered for s in _strings(i))
    return found


def form_sections(
    questionnaire: dict[str, Any], response: dict[str, Any] | None
) -> list[FormSection]:
    """The form, filled with ``response`` (the current plan's answers, or what was just posted)."""
    return [
        FormSection(
            str(group["linkId"]),
            str(group.get("prefix") or ""),
            str(group.get("text") or ""),
            [_field(str(group["linkId"]), i, response) for i in group.get("item") or []],
        )
        for group in questionnaire.get("item") or []
        if group.get("type") == "group"
    ]


def _texts(link_id: str, values: list[str]) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [{"valueString": v} for v in values]}


def _posted_rows(posted: dict[str, str], link_id: str) -> list[tuple[str, str]]:
    rows = []
    for i in range(MAX_ENTRIES + _SPARE_ROWS):  # a bound: no more rows than the form offers
        name = posted.get(f"{link_id}.name.{i}", "").strip()
        phone = posted.get(f"{link_id}.phone.{i}", "").strip()
        if name or phone:
            rows.append((name, phone))
    return rows


def _item_answers(item: dict[str, Any], posted: dict[str, str]) -> tuple[list[dict[str, Any]], str]:
    """The response items for one question from the form, and what is wrong with them."""
    kind, link_id = _kind(item), str(item["linkId"])
    limit = int(item.get("maxLength") or MAX_TEXT)
    if kind == "contacts":
        rows = _posted_rows(posted, link_id)
        out = [
            {
                "linkId": link_id,
                "item": [
                    _texts(f"{link_id}.{part}", [value])
                    for part, value in (("name", name), ("phone", phone))
                    if value
                ],
            }
            for name, phone in rows
        ]
        too_long = any(len(name) > 120 or len(phone) > 40 for name, phone in rows)
        return out, "A name may have 120 characters and a phone number 40." if too_long else ""
    if kind == "display":
        return [], ""
    text = posted.get(link_id, "").strip()
    values = [line.strip() for line in text.splitlines() if line.strip()] if kind == "lines" else []
    values = values if kind == "lines" else ([text] if text else [])
    if len(values) > MAX_ENTRIES:
        return [], f"At most {MAX_ENTRIES} lines."
    if any(len(v) > limit for v in values):
        return [], f"Each {'line' if kind == 'lines' else 'answer'} may have {limit} characters."
    return ([_texts(link_id, values)] if values else []), ""


def response_from_form(
    questionnaire: dict[str, Any], patient: str, posted: dict[str, str], authored: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """A completed QuestionnaireResponse from the posted form, and the errors by field name."""
    items, errors = [], {}
    for group in questionnaire.get("item") or []:
        if group.get("type") != "group":
            continue
        children = []
        for item in group.get("item") or []:
            answers, error = _item_answers(item, posted)
            children += answers
            if error:
                errors[str(item["linkId"])] = error
        if children:
            items.append({"linkId": group["linkId"], "item": children})
    response: dict[str, Any] = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": QUESTIONNAIRE_URL,
        "status": "completed",
        "subject": {"reference": patient},
        "authored": authored,
        "source": {"reference": patient},  # the patient's own words
    }
    if items:
        response["item"] = items
    elif not errors:
        errors["plan"] = "Write at least one thing in the plan before saving it."
    return response, errors
