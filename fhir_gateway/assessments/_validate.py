"""A QuestionnaireResponse checked against its stored Questionnaire, whichever door it came by:
unknown questionnaire or linkId, an answer not among the options or of the wrong type, repeats on
a single-answer item, and (when ``completed``) a required question left unanswered. All are
refused at once, each naming its item (422). An answer to a question its enableWhen skips is kept
(the published C-SSRS example answers every question): scoring reads it, so a yes is never lost."""

from __future__ import annotations

from typing import Any

from fhir_gateway.assessments._answers import (
    MAX_ANSWERS,
    answers_of,
    enabled,
    response_items,
    same_value,
    value_of,
)
from fhir_gateway.assessments._instruments import Instrument
from fhir_gateway.errors import BusinessRule, Issue

__all__ = ["check_response", "refuse"]

MAX_ISSUES = 20
_TYPES: dict[str, frozenset[str]] = {
    "boolean": frozenset({"valueBoolean"}),
    "decimal": frozenset({"valueDecimal", "valueInteger"}),
    "integer": frozenset({"valueInteger"}),
    "date": frozenset({"valueDate"}),
    "dateTime": frozenset({"valueDateTime", "valueDate"}),
    "time": frozenset({"valueTime"}),
    "string": frozenset({"valueString"}),
    "text": frozenset({"valueString"}),
    "url": frozenset({"valueUri"}),
    "choice": frozenset(
        {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime", "valueReference"}
    ),
    "open-choice": frozenset(
        {"valueCoding", "valueString", "valueInteger", "valueDate", "valueTime", "valueReference"}
    ),
    "attachment": frozenset({"valueAttachment"}),
    "reference": frozenset({"valueReference"}),
    "quantity": frozenset({"valueQuantity"}),
}


def _where(link: str) -> list[str]:
    return [f"QuestionnaireResponse.item.where(linkId='{link}')"]


def _option_issue(item: dict[str, Any], key: str, value: Any) -> str | None:
    options = item.get("answerOption", []) or []
    if not options or (item.get("type") == "open-choice" and key == "valueString"):
        return None
    for option in options:
        if key in option and same_value(option[key], value):
            return None
    shown = value.get("code") if isinstance(value, dict) else value
    allowed = ", ".join(
        str(o["valueCoding"].get("code")) if "valueCoding" in o else str(next(iter(o.values()), ""))
        for o in options[:12]
    )
    return f"answer {shown!r} is not one of its answerOptions ({allowed})"


def _answer_issues(instrument: Instrument, item: dict[str, Any], link: str) -> list[str]:
    definition = instrument.items[link]
    given = item.get("answer")
    answers = [a for a in given if isinstance(a, dict)] if isinstance(given, list) else []
    if definition.get("readOnly") and link in instrument.calculated:
        return []  # computed here: what a form sent is replaced by the score
    kind = str(definition.get("type"))
    if answers and kind in ("group", "display"):
        return [f"a {kind} item takes no answer"]
    problems = []
    if len(answers) > 1 and not definition.get("repeats"):
        # per instance: each repetition of a repeating group answers its own items once
        problems.append(f"takes one answer, not {len(answers)}")
    for answer in answers:
        found = value_of(answer)
        if found is None:
            continue
        key, value = found
        if key not in _TYPES.get(kind, frozenset()):
            problems.append(f"{key} does not fit an item of type {kind}")
        elif kind in ("choice", "open-choice") and (why := _option_issue(definition, key, value)):
            problems.append(why)
    return problems


def check_response(instrument: Instrument, response: dict[str, Any]) -> list[Issue]:
    """Every problem of ``response`` against ``instrument`` (empty: it may be stored)."""
    issues: list[tuple[str, str]] = []
    answers = answers_of(response)
    for item in response_items(response.get("item", []) or []):
        link = str(item.get("linkId"))
        if link not in instrument.items:
            issues.append(
                (
                    link,
                    f"linkId {link!r} is not an item of {instrument.url or instrument.reference}",
                )
            )
            continue
        issues += [
            (link, f"{instrument.label(link)}: {p}") for p in _answer_issues(instrument, item, link)
        ]
    for link, given in answers.items():
        definition = instrument.items.get(link)
        if definition is None or not given:
            continue
        if len(given) > MAX_ANSWERS:
            issues.append((link, f"{instrument.label(link)}: more than {MAX_ANSWERS} answers"))
    if response.get("status") == "completed":
        for link, definition in instrument.items.items():
            if (
                definition.get("required")
                and not definition.get("readOnly")
                and definition.get("type") not in ("group", "display")
                and not answers.get(link)
                and enabled(instrument, link, answers)
            ):
                issues.append(
                    (
                        link,
                        f"{instrument.label(link)} is required and unanswered in a completed response",
                    )
                )
    return [
        Issue(text, code="business-rule", expression=_where(link))
        for link, text in issues[:MAX_ISSUES]
    ]


def refuse(issues: list[Issue]) -> None:
    if issues:
        summary = "; ".join(i.diagnostics for i in issues[:3])
        raise BusinessRule(
            f"The QuestionnaireResponse does not fit its Questionnaire: {summary}", issues=issues
        )
