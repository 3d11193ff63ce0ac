"""An instrument is a stored Questionnaire read once for scoring: its items by linkId, the answer
weights, each calculatedExpression compiled, and which items become Observations.

Instruments are built from what is stored (``instrument``), per database, and rebuilt when any
Questionnaire is created, updated or deleted (through the API too), like the care-plan templates.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.assessments._codes import CALCULATED, OBSERVATION_EXTRACT, SAFETY_ITEM
from fhir_gateway.assessments._fhirpath import (
    Compiled,
    ExpressionError,
    compile_expression,
    weight_of,
    weights_of,
)
from fhir_gateway.careplans import StoredDataCache
from fhir_gateway.store.tables import resources

__all__ = [
    "MAX_ITEMS",
    "MAX_DEPTH",
    "Instrument",
    "build",
    "instrument",
    "instruments",
    "questionnaire",
    "unusable",
    "walk",
]

MAX_ITEMS = 500  # items in a Questionnaire or a response
MAX_DEPTH = 10  # nesting of items


def _trial() -> dict[str, Any]:
    return {"resourceType": "QuestionnaireResponse", "status": "completed", "item": []}


_LINK_IN_EXPRESSION = re.compile(r"linkId\s*=\s*'([^']+)'")


def _flag(item: dict[str, Any], url: str) -> bool:
    return any(
        e.get("url") == url and e.get("valueBoolean") is True for e in item.get("extension", [])
    )


def _expression(item: dict[str, Any]) -> str | None:
    for ext in item.get("extension", []):
        value = ext.get("valueExpression") or {}
        if ext.get("url") == CALCULATED and value.get("language") == "text/fhirpath":
            return str(value.get("expression") or "") or None
    return None


def walk(items: list[dict[str, Any]], depth: int = 0) -> Iterator[dict[str, Any]]:
    """Every item, nested ones too (bounded depth)."""
    if depth > MAX_DEPTH:
        raise ExpressionError(f"Items are nested deeper than {MAX_DEPTH} levels")
    for item in items:
        yield item
        yield from walk(item.get("item", []) or [], depth + 1)


@dataclass(slots=True)
class Instrument:
    """What scoring and validation need from one Questionnaire version."""

    questionnaire: dict[str, Any]
    items: dict[str, dict[str, Any]]  # linkId → item definition
    scored: list[str]  # items whose answers carry weights, in order
    calculated: dict[str, Compiled] = field(default_factory=dict)
    depends: dict[str, list[str]] = field(default_factory=dict)  # calculated → items it reads
    extracted: list[str] = field(default_factory=list)  # items that become Observations
    safety: frozenset[str] = frozenset()

    @property
    def url(self) -> str:
        return str(self.questionnaire.get("url") or "")

    @property
    def reference(self) -> str:
        return f"Questionnaire/{self.questionnaire.get('id')}"

    def label(self, link_id: str) -> str:
        """An item in words: its number among the questions, linkId and text."""
        questions = [k for k, v in self.items.items() if v.get("type") not in ("group", "display")]
        number = questions.index(link_id) + 1 if link_id in questions else None
        text = str(self.items.get(link_id, {}).get("text") or "")[:80]
        return f"item {number} ({link_id} {text})" if number else f"{link_id} {text}"


def build(questionnaire: dict[str, Any]) -> Instrument:
    """Read a Questionnaire for scoring; raises ExpressionError (422) when it cannot be used."""
    items: dict[str, dict[str, Any]] = {}
    for item in walk(questionnaire.get("item", []) or []):
        if len(items) >= MAX_ITEMS:
            raise ExpressionError(f"A Questionnaire may have at most {MAX_ITEMS} items")
        link = item.get("linkId")
        if isinstance(link, str):
            items[link] = item
    table = weights_of(list(items.values()))
    scored = [
        link
        for link, item in items.items()
        if not item.get("readOnly")
        and any(weight_of(o) is not None for o in item.get("answerOption", []) or [])
    ]
    found = Instrument(
        questionnaire=questionnaire,
        items=items,
        scored=scored,
        extracted=[k for k, v in items.items() if _flag(v, OBSERVATION_EXTRACT)],
        safety=frozenset(k for k, v in items.items() if _flag(v, SAFETY_ITEM)),
    )
    for link, item in items.items():
        expression = _expression(item)
        if expression is None:
            continue
        found.calculated[link] = compile_expression(expression, table)
        trial = _trial()  # an empty response: what fails at run time fails at the write
        found.calculated[link](trial, {"resource": trial, "questionnaire": questionnaire})
        named = set(_LINK_IN_EXPRESSION.findall(expression)) - {link}
        found.depends[link] = [k for k in items if k in named] or scored
    return found


@dataclass(slots=True)
class InstrumentSet:
    by_url: dict[str, Instrument] = field(default_factory=dict)
    by_ref: dict[str, Instrument] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)  # canonical → why it cannot be used

    def add(self, doc: dict[str, Any]) -> None:
        keys = [f"Questionnaire/{doc.get('id')}"] + ([doc["url"]] if doc.get("url") else [])
        try:
            built = build(doc)
        except ExpressionError as exc:
            self.broken.update({k: exc.message for k in keys})
            return
        self.by_ref[keys[0]] = built
        if doc.get("url"):
            self.by_url[doc["url"]] = built

    def find(self, canonical: str) -> Instrument | None:
        """By url or ``Questionnaire/<id>``; a ``|version`` is read as the current version (an
        edited instrument still takes the responses made with its earlier version)."""
        url = canonical.partition("|")[0]
        return self.by_url.get(url) or self.by_ref.get(url)


def _load(session: Session) -> InstrumentSet:
    loaded = InstrumentSet()
    rows = session.execute(
        select(resources.c.content).where(
            resources.c.res_type == "Questionnaire", resources.c.deleted.is_(False)
        )
    ).scalars()
    for content in rows:
        loaded.add(content if isinstance(content, dict) else orjson.loads(content))
    return loaded


# Built once per database and rebuilt when a Questionnaire is created, updated or deleted (the
# templates' cache, which a restored database can tell to forget).
_instruments = StoredDataCache(("Questionnaire",), _load)


def instruments(session: Session) -> InstrumentSet:
    """The stored instruments, built once per database and Questionnaire change."""
    return _instruments.get(session)


def instrument(session: Session, canonical: str | None) -> Instrument | None:
    """The stored Questionnaire named by a canonical url (``|version`` read as current) or
    ``Questionnaire/<id>``, compiled; None when none is stored (or it cannot be used)."""
    if not isinstance(canonical, str) or not canonical:
        return None
    return instruments(session).find(canonical)


def unusable(session: Session, canonical: str | None) -> str | None:
    """Why a stored Questionnaire of that canonical cannot be scored (stored before its rules)."""
    if not isinstance(canonical, str):
        return None
    return instruments(session).broken.get(canonical.partition("|")[0])


def questionnaire(session: Session, canonical: str | None) -> dict[str, Any] | None:
    found = instrument(session, canonical)
    return found.questionnaire if found is not None else None
