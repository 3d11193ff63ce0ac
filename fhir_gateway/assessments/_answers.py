"""A response's answers by linkId, and whether an item is enabled (its enableWhen met)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from fhir_gateway.assessments._instruments import MAX_DEPTH, MAX_ITEMS, Instrument
from fhir_gateway.errors import BusinessRule

__all__ = [
    "MAX_ANSWERS",
    "Answers",
    "answers_of",
    "response_items",
    "value_of",
    "same_value",
    "enabled",
]

MAX_ANSWERS = 50  # answers to one item
Answers = dict[str, list[Any]]  # linkId → the answers' values (a Coding dict, int, str, …)


def _list(value: Any) -> list[Any]:
    return value if isinstance(value, list) else []


def value_of(answer: dict[str, Any]) -> tuple[str, Any] | None:
    """(``valueX`` key, value) of an answer, None when it has none."""
    for key, value in answer.items():
        if key.startswith("value"):
            return key, value
    return None


def response_items(items: list[dict[str, Any]], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every item of a response, nested under items and answers too (bounded)."""
    if depth > MAX_DEPTH:
        raise BusinessRule(f"Response items are nested deeper than {MAX_DEPTH} levels")
    for item in _list(items):
        if not isinstance(item, dict):
            continue
        yield item
        yield from response_items(_list(item.get("item")), depth + 1)
        for answer in _list(item.get("answer")):
            if isinstance(answer, dict):
                yield from response_items(_list(answer.get("item")), depth + 1)


def answers_of(response: dict[str, Any]) -> Answers:
    found: Answers = {}
    for count, item in enumerate(response_items(_list(response.get("item")))):
        if count >= MAX_ITEMS:
            raise BusinessRule(f"A QuestionnaireResponse may have at most {MAX_ITEMS} items")
        answers = [a for a in _list(item.get("answer")) if isinstance(a, dict)]
        values = [v[1] for a in answers if (v := value_of(a)) is not None]
        found.setdefault(str(item.get("linkId")), []).extend(values[: MAX_ANSWERS + 1])
    return found


def same_value(a: Any, b: Any) -> bool:
    """Answers compare as FHIR does: Codings by system and code, the rest by value."""
    if isinstance(a, dict) and isinstance(b, dict):
        return (a.get("system"), a.get("code")) == (b.get("system"), b.get("code"))
    return bool(a == b)


def _condition_met(condition: dict[str, Any], given: list[Any]) -> bool:
    operator = condition.get("operator")
    expected = next((v for k, v in condition.items() if k.startswith("answer")), None)
    if operator == "exists":
        return bool(given) == (expected is True)
    if operator == "=":
        return any(same_value(v, expected) for v in given)
    if operator == "!=":
        return bool(given) and not any(same_value(v, expected) for v in given)
    numbers = [v for v in given if isinstance(v, int | float) and not isinstance(v, bool)]
    if not isinstance(expected, int | float) or not numbers:
        return False
    compare = {">": float.__gt__, "<": float.__lt__, ">=": float.__ge__, "<=": float.__le__}
    test = compare.get(str(operator))
    return test is not None and any(test(float(v), float(expected)) for v in numbers)


def enabled(instrument: Instrument, link: str, answers: Answers, depth: int = 0) -> bool:
    """Whether ``link`` is asked, given the answers (its enableWhen, and its question's)."""
    item = instrument.items.get(link, {})
    conditions = item.get("enableWhen", []) or []
    if not conditions or depth > MAX_DEPTH:
        return True
    results = [
        _condition_met(c, answers.get(str(c.get("question")), []))
        and enabled(instrument, str(c.get("question")), answers, depth + 1)
        for c in conditions
    ]
    return all(results) if item.get("enableBehavior") == "all" else any(results)
