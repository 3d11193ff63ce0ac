"""Any stored Questionnaire as a web form, and the posted form as a QuestionnaireResponse (pure:
no database).

    items = form_items(questionnaire)                       # what the page draws
    checked = check_answers(questionnaire, fields)          # answers, or what to fix, in words

Choices are radio groups whose values are the option's position (the Coding is taken from the
Questionnaire, never from the post); booleans are yes/no; numbers, dates and text are inputs;
``display`` items are text; groups are headed sections; ``readOnly`` items (scores the gateway
calculates) are not asked. ``enableWhen`` is honoured on the server: an item whose condition does
not hold is not required and its answer is dropped, so a page without JavaScript can show every
question with the condition in words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

__all__ = [
    "FormItem",
    "FormOption",
    "CheckedAnswers",
    "form_items",
    "check_answers",
    "response_items",
    "MAX_ITEMS",
]

MAX_ITEMS = 500  # as the instruments' validation bounds a response
MAX_TEXT = 2000
_ASKED = frozenset({"choice", "boolean", "integer", "decimal", "string", "text", "date"})
_INTEGER = re.compile(r"^-?\d{1,9}$")
_DECIMAL = re.compile(r"^-?\d{1,12}(\.\d{1,6})?$")
Fields = Mapping[str, Sequence[str]]


@dataclass(frozen=True, slots=True)
class FormOption:
    value: str  # its position in answerOption
    label: str
    coding: dict[str, Any] | None  # valueCoding, else None
    other: Any = None  # valueString / valueInteger / valueDate


@dataclass(slots=True)
class FormItem:
    link_id: str
    name: str  # the form field: a-<position>
    text: str
    kind: str  # choice | boolean | integer | decimal | string | text | date | display | group
    required: bool
    depth: int
    options: list[FormOption] = field(default_factory=list)
    condition: str = ""  # enableWhen in words
    enable_when: list[dict[str, Any]] = field(default_factory=list)
    enable_all: bool = True

    @property
    def asked(self) -> bool:
        return self.kind in _ASKED


def _label(option: dict[str, Any]) -> tuple[str, dict[str, Any] | None, Any]:
    coding = option.get("valueCoding")
    if isinstance(coding, dict):
        return str(coding.get("display") or coding.get("code") or "?"), coding, None
    for key in ("valueString", "valueInteger", "valueDate"):
        if key in option:
            return str(option[key]), None, option[key]
    return "?", None, None


def _options(item: dict[str, Any]) -> list[FormOption]:
    found = []
    for i, option in enumerate(item.get("answerOption") or []):
        if isinstance(option, dict):
            label, coding, other = _label(option)
            found.append(FormOption(str(i), label, coding, other))
    return found


def _flat(items: Any, depth: int, out: list[FormItem], texts: dict[str, str]) -> None:
    for item in items or []:
        if not isinstance(item, dict) or len(out) >= MAX_ITEMS:
            return
        kind = str(item.get("type") or "display")
        if item.get("readOnly"):
            kind = "display" if kind != "group" else kind
            if kind == "display":
                continue  # a score the gateway calculates: not asked
        link_id = str(item.get("linkId") or "")
        texts[link_id] = str(item.get("text") or link_id)
        out.append(
            FormItem(
                link_id=link_id,
                name=f"a-{len(out)}",
                text=str(item.get("text") or ""),
                kind=kind if kind in _ASKED | {"display", "group"} else "display",
                required=bool(item.get("required")),
                depth=depth,
                options=_options(item),
                enable_when=[w for w in item.get("enableWhen") or [] if isinstance(w, dict)],
                enable_all=item.get("enableBehavior") != "any",
            )
        )
        if kind == "group":
            _flat(item.get("item"), depth + 1, out, texts)


def _answer_words(when: dict[str, Any], labels: dict[str, str]) -> str:
    """The answer a condition names, in the words the form shows for it (a bare code is
    read through the asked item's own options: "Yes", not "LA33-6")."""
    for key, value in when.items():
        if key == "answerCoding" and isinstance(value, dict):
            code = str(value.get("code"))
            return str(value.get("display") or labels.get(code) or code)
        if key == "answerBoolean":
            return "Yes" if value else "No"
        if key.startswith("answer"):
            return str(value)
    return ""


def _condition(item: FormItem, texts: dict[str, str], labels: dict[str, dict[str, str]]) -> str:
    if not item.enable_when:
        return ""
    parts = []
    for when in item.enable_when:
        question = texts.get(str(when.get("question")), str(when.get("question")))
        words = labels.get(str(when.get("question")), {})
        operator = when.get("operator")
        if operator == "exists":
            parts.append(
                f"“{question}” is {'answered' if when.get('answerBoolean') else 'not answered'}"
            )
        elif operator == "!=":
            parts.append(f"the answer to “{question}” is not {_answer_words(when, words)}")
        else:
            sign = "" if operator == "=" else f"{operator} "
            parts.append(f"the answer to “{question}” is {sign}{_answer_words(when, words)}")
    joiner = " and " if item.enable_all else " or "
    return "Answer only if " + joiner.join(parts) + "."


def form_items(questionnaire: dict[str, Any]) -> list[FormItem]:
    items: list[FormItem] = []
    texts: dict[str, str] = {}
    _flat(questionnaire.get("item"), 0, items, texts)
    labels = {
        i.link_id: {str(o.coding.get("code")): o.label for o in i.options if o.coding}
        for i in items
    }
    for item in items:
        item.condition = _condition(item, texts, labels)
    return items


# -- checking a posted form ------------------------------------------------------------------------


@dataclass(slots=True)
class CheckedAnswers:
    answers: dict[str, list[dict[str, Any]]] = field(default_factory=dict)  # linkId → answer
    errors: dict[str, str] = field(default_factory=dict)  # field name → what to fix
    values: dict[str, str] = field(default_factory=dict)  # field name → what was posted

    @property
    def ok(self) -> bool:
        return not self.errors


def _one(fields: Fields, name: str) -> str:
    values = fields.get(name) or []
    return str(values[0]).strip() if values else ""


def _value(item: FormItem, text: str) -> tuple[dict[str, Any] | None, str]:
    """The answer of ``item`` from the posted text, or the error in words."""
    if item.kind == "choice":
        option = next((o for o in item.options if o.value == text), None)
        if option is None:
            return None, "Choose one of the answers."
        if option.coding is not None:
            return {"valueCoding": option.coding}, ""
        key = {str: "valueString", int: "valueInteger"}.get(type(option.other), "valueDate")
        return {key: option.other}, ""
    if item.kind == "boolean":
        if text not in ("yes", "no"):
            return None, "Choose yes or no."
        return {"valueBoolean": text == "yes"}, ""
    if item.kind == "integer":
        if not _INTEGER.match(text):
            return None, "Enter a whole number, like 3."
        return {"valueInteger": int(text)}, ""
    if item.kind == "decimal":
        if not _DECIMAL.match(text):
            return None, "Enter a number, like 2.5."
        return {"valueDecimal": float(text)}, ""
    if item.kind == "date":
        try:
            return {"valueDate": date.fromisoformat(text).isoformat()}, ""
        except ValueError:
            return None, "Enter a real date, like 2026-03-31."
    if "\x00" in text or len(text) > MAX_TEXT:
        return None, f"Keep this to {MAX_TEXT} characters of plain text."
    return {"valueString": text}, ""


def _same(answer: dict[str, Any], when: dict[str, Any]) -> bool | None:
    for key, expected in when.items():
        if not key.startswith("answer"):
            continue
        kind = "value" + key[len("answer") :]
        given = answer.get(kind)
        if given is None:
            return None
        if kind == "valueCoding":
            return (given.get("system"), given.get("code")) == (
                expected.get("system"),
                expected.get("code"),
            )
        return bool(given == expected)
    return None


def _holds(when: dict[str, Any], answers: dict[str, list[dict[str, Any]]]) -> bool:
    given = answers.get(str(when.get("question"))) or []
    operator = when.get("operator")
    if operator == "exists":
        return bool(given) == bool(when.get("answerBoolean"))
    results = [_same(a, when) for a in given]
    if operator == "=":
        return any(r is True for r in results)
    if operator == "!=":
        return bool(given) and all(r is False for r in results)
    return False  # ordered comparisons are not used by the shipped instruments: not enabled


def enabled(item: FormItem, answers: dict[str, list[dict[str, Any]]]) -> bool:
    if not item.enable_when:
        return True
    found = [_holds(w, answers) for w in item.enable_when]
    return all(found) if item.enable_all else any(found)


def check_answers(questionnaire: dict[str, Any], fields: Fields) -> CheckedAnswers:
    """The answers of the enabled questions, or what to fix (questions in order, so an item's
    condition sees the answers before it)."""
    checked = CheckedAnswers()
    for item in form_items(questionnaire):
        if not item.asked:
            continue
        text = _one(fields, item.name)
        checked.values[item.name] = text
        if not enabled(item, checked.answers):
            continue  # skipped by its condition: neither required nor kept
        if not text:
            if item.required:
                checked.errors[item.name] = "Answer this question."
            continue
        answer, error = _value(item, text)
        if answer is None:
            checked.errors[item.name] = error
        else:
            checked.answers[item.link_id] = [answer]
    return checked


def response_items(items: Any, answers: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """``QuestionnaireResponse.item`` in the Questionnaire's structure, answered items only."""
    out: list[dict[str, Any]] = []
    for item in items or []:
        if not isinstance(item, dict):
            continue
        link_id = str(item.get("linkId") or "")
        entry: dict[str, Any] = {"linkId": link_id}
        if item.get("text"):
            entry["text"] = item["text"]
        if item.get("type") == "group":
            children = response_items(item.get("item"), answers)
            if children:
                out.append({**entry, "item": children})
        elif answers.get(link_id):
            out.append({**entry, "answer": answers[link_id]})
    return out
