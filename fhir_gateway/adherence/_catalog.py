"""Medication classes and long-acting injectables, as data (``mappings/medications/``).

* A **class** is a ValueSet over RxNorm ingredients and ATC (``is-a`` filters read as ATC's code
  prefixes, ``exclude`` honoured: lithium N05AN01 is a mood stabiliser, not an antipsychotic).
* A product coded by RxNorm SCD/SBD falls in its ingredient's class through the product table
  (ConceptMap ``rxnorm-product-ingredient``); one not listed still matches by its ingredient's
  name, as a whole word of its display or text ("sertraline 25 MG Oral Tablet").
* A **long-acting injectable** is an ActivityDefinition whose ``dosage.timing.repeat`` gives the
  dosing interval (``period``) and the latest day it may be given (``periodMax``: the grace), its
  names (salt and brand) in ``medication-name`` extensions and its class in ``medication-class``.

Shipped files are read once; ``adherence_medications_dir`` adds the user's own (same id: theirs
wins). Pure: no database.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import orjson

import mappings

log = logging.getLogger("fhir_gateway.adherence")

__all__ = [
    "RXNORM",
    "ATC",
    "SHIPPED",
    "MedClass",
    "LongActingInjectable",
    "MedicationCatalog",
    "Medicine",
    "load_catalog",
    "codings_and_names",
]

RXNORM = "http://www.nlm.nih.gov/research/umls/rxnorm"
ATC = "http://www.whocc.no/atc"
SHIPPED = Path(mappings.__file__).parent / "medications"
_EXT = "http://fhir-gateway.org/fhir/StructureDefinition/"
_SENSITIVITY = _EXT + "sensitivity"
_MAX_FILES = 500  # a folder of data, not a dump: more is refused


@dataclass(frozen=True, slots=True)
class MedClass:
    id: str  # the ValueSet id: the class's key in Observation and Flag ids
    url: str
    title: str
    sensitivities: tuple[str, ...]  # "substance-use": labelled like a substance-use diagnosis
    rxnorm: frozenset[str]
    rx_names: tuple[
        tuple[str, str], ...
    ]  # (code, name) of ingredients, for products coded by nothing the table knows
    atc_prefixes: tuple[str, ...]
    atc_codes: frozenset[str]
    excluded: frozenset[tuple[str, str]]  # (system, code)

    def has_code(self, system: str, code: str) -> bool:
        if (system, code) in self.excluded:
            return False
        if system == RXNORM:
            return code in self.rxnorm
        if system == ATC:
            return code in self.atc_codes or code.startswith(self.atc_prefixes)
        return False


@dataclass(frozen=True, slots=True)
class LongActingInjectable:
    id: str
    title: str
    class_url: str
    interval: int  # days one injection covers
    grace: int  # days after the interval before it is missed
    names: tuple[str, ...]
    codes: frozenset[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class Medicine:
    """What a dispense, administration or order is of, as the catalog reads it."""

    key: str  # the same drug across fills: its ingredient code, else its name
    name: str
    med_class: MedClass | None
    injectable: LongActingInjectable | None


@dataclass(slots=True)
class MedicationCatalog:
    classes: list[MedClass] = field(default_factory=list)
    injectables: list[LongActingInjectable] = field(default_factory=list)
    products: dict[str, str] = field(default_factory=dict)  # RxNorm product → ingredient

    def by_url(self, url: str) -> MedClass | None:
        return next((c for c in self.classes if c.url == url), None)

    def by_id(self, class_id: str) -> MedClass | None:
        return next((c for c in self.classes if c.id == class_id), None)

    def medicine(self, concept: dict[str, Any] | None) -> Medicine:
        """The class, injectable and key of a CodeableConcept (a medication's code)."""
        codings, names = codings_and_names(concept)
        injectable = self._injectable(codings, names)
        ingredients = [
            (RXNORM, self.products.get(code, code)) for system, code in codings if system == RXNORM
        ]
        coded = [*ingredients, *((s, c) for s, c in codings if s != RXNORM)]
        med_class = next(
            (c for c in self.classes for s, code in coded if c.has_code(s, code)), None
        )
        ingredient = next(
            (code for s, code in ingredients if med_class and code in med_class.rxnorm), None
        )
        if med_class is None:
            med_class, ingredient = self._by_name(names)
        if med_class is None and injectable is not None:
            med_class = self.by_url(injectable.class_url)
        name = names[0] if names else (codings[0][1] if codings else "unnamed medication")
        key = f"{RXNORM}|{ingredient}" if ingredient else name.casefold()
        if injectable is not None:
            key = f"injectable|{injectable.id}"
        return Medicine(key, name, med_class, injectable)

    def _by_name(self, names: list[str]) -> tuple[MedClass | None, str | None]:
        for med_class in self.classes:
            for code, name in med_class.rx_names:
                if any(_word(name).search(text) for text in names):
                    return med_class, code
        return None, None

    def _injectable(
        self, codings: list[tuple[str, str]], names: list[str]
    ) -> LongActingInjectable | None:
        """By code, else the entry with the most of its names in the text (Trinza's names include
        the monthly salt's, so a three-monthly injection is never read as a monthly one)."""
        for entry in self.injectables:
            if entry.codes & set(codings):
                return entry
        scored = [
            (sum(1 for n in e.names if any(_word(n).search(t) for t in names)), i)
            for i, e in enumerate(self.injectables)
        ]
        best = max(scored, default=(0, -1))
        return self.injectables[best[1]] if best[0] else None


@cache
def _word(name: str) -> re.Pattern[str]:
    return re.compile(rf"(?<![\w-]){re.escape(name)}(?![\w-])", re.IGNORECASE)


def codings_and_names(concept: dict[str, Any] | None) -> tuple[list[tuple[str, str]], list[str]]:
    codings = [
        (str(c.get("system") or ""), str(c.get("code") or ""))
        for c in (concept or {}).get("coding") or []
        if isinstance(c, dict) and c.get("code")
    ][:20]
    names = [str((concept or {}).get("text") or "")] + [
        str(c.get("display") or "")
        for c in (concept or {}).get("coding") or []
        if isinstance(c, dict)
    ][:20]
    return codings, [n[:500] for n in names if n.strip()]


# -- reading the data ----------------------------------------------------------------------------


def _files(folder: Path) -> Iterator[dict[str, Any]]:
    """The folder's JSON resources; one that cannot be read is left out and logged (a user's
    typo must not stop every medication write)."""
    for path in sorted(folder.glob("*.json"))[:_MAX_FILES]:
        try:
            doc = orjson.loads(path.read_bytes())
        except (OSError, orjson.JSONDecodeError) as exc:
            log.warning("medication mappings: %s left out (%s)", path, exc)
            continue
        if isinstance(doc, dict):
            yield doc


def _med_class(doc: dict[str, Any]) -> MedClass:
    compose = doc.get("compose") or {}
    rx: dict[str, str] = {}
    prefixes: list[str] = []
    atc: set[str] = set()
    for inc in compose.get("include") or []:
        system = inc.get("system")
        for concept in inc.get("concept") or []:
            if system == RXNORM:
                rx[str(concept["code"])] = str(concept.get("display") or "")
            elif system == ATC:
                atc.add(str(concept["code"]))
        for flt in inc.get("filter") or []:
            if system == ATC and flt.get("op") in ("is-a", "descendent-of"):
                prefixes.append(str(flt["value"]))
    excluded = {
        (str(exc.get("system")), str(c["code"]))
        for exc in compose.get("exclude") or []
        for c in exc.get("concept") or []
    }
    sensitivities = tuple(
        str(e.get("valueCode"))
        for e in doc.get("extension") or []
        if e.get("url") == _SENSITIVITY and e.get("valueCode")
    )
    return MedClass(
        id=str(doc["id"]),
        url=str(doc.get("url") or doc["id"]),
        title=str(doc.get("title") or doc.get("name") or doc["id"]),
        sensitivities=sensitivities,
        rxnorm=frozenset(rx),
        rx_names=tuple((c, n) for c, n in rx.items() if n),
        atc_prefixes=tuple(prefixes),
        atc_codes=frozenset(atc),
        excluded=frozenset(excluded),
    )


def _injectable_of(doc: dict[str, Any]) -> LongActingInjectable | None:
    repeat = (((doc.get("dosage") or [{}])[0].get("timing") or {}).get("repeat")) or {}
    if repeat.get("periodUnit", "d") != "d" or not repeat.get("period"):
        return None
    ext = doc.get("extension") or []
    product = doc.get("productCodeableConcept") or {}
    interval = int(repeat["period"])
    return LongActingInjectable(
        id=str(doc["id"]),
        title=str(doc.get("title") or product.get("text") or doc["id"]),
        class_url=next(
            (str(e["valueCanonical"]) for e in ext if e.get("url") == _EXT + "medication-class"),
            "",
        ),
        interval=interval,
        grace=max(0, int(repeat.get("periodMax") or interval) - interval),
        names=tuple(str(e["valueString"]) for e in ext if e.get("url") == _EXT + "medication-name"),
        codes=frozenset(
            (str(c.get("system")), str(c.get("code")))
            for c in product.get("coding") or []
            if c.get("code")
        ),
    )


def _products(doc: dict[str, Any]) -> dict[str, str]:
    return {
        str(el["code"]): str(el["target"][0]["code"])
        for group in doc.get("group") or []
        if group.get("source") == RXNORM and group.get("target") == RXNORM
        for el in group.get("element") or []
        if el.get("target")
    }


def _merged(folders: Iterable[Path]) -> list[dict[str, Any]]:
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for folder in folders:
        for doc in _files(folder):
            if doc.get("status", "active") == "active":
                found[(str(doc.get("resourceType")), str(doc.get("id")))] = doc
            else:
                found.pop((str(doc.get("resourceType")), str(doc.get("id"))), None)
    return list(found.values())


@cache
def load_catalog(user_dir: str | None = None) -> MedicationCatalog:
    """The shipped classes and injectables, with the user's folder over them."""
    catalog = MedicationCatalog()
    for doc in _merged([SHIPPED, *([Path(user_dir)] if user_dir else [])]):
        try:
            _add(catalog, doc)
        except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
            log.warning(
                "medication mappings: %s/%s left out (%r)",
                doc.get("resourceType"),
                doc.get("id"),
                exc,
            )
    return catalog


def _add(catalog: MedicationCatalog, doc: dict[str, Any]) -> None:
    kind = doc.get("resourceType")
    if kind == "ValueSet":
        catalog.classes.append(_med_class(doc))
    elif kind == "ActivityDefinition" and (lai := _injectable_of(doc)) is not None:
        catalog.injectables.append(lai)
    elif kind == "ConceptMap":
        catalog.products.update(_products(doc))
