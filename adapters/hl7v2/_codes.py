"""HL7 table → FHIR code maps, read from FHIR ConceptMaps.

The project's maps live in the ``mappings/hl7v2/`` package; a user directory of ConceptMaps with
the same ``id`` overrides them code by code (a new id adds a map). An unmapped code is never
dropped: callers keep it with its v2 system (``CodeableConcept``) or report it (``code``).

A ConceptMap may be narrowed to a country (``jurisdiction``, ISO 3166) or to senders
(``useContext`` of code ``urn:fhir-gateway:usage-context#sender`` whose value names
``APP|FACILITY`` or ``FACILITY``). For one message the sender's maps are asked first, then its
country's, then the general one: ``I10`` is ICD-10-CM in the US map, WHO ICD-10 in general.
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["CodeMaps", "load_code_maps", "V2_SYSTEM", "SENDER_CONTEXT", "builtin_mappings_dir"]

V2_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-"
SENDER_CONTEXT = ("urn:fhir-gateway:usage-context", "sender")
_RFC3986 = "urn:ietf:rfc:3986"
_ISO3166 = "urn:iso:std:iso:3166"
_PUNCTUATION = re.compile(r"[^0-9A-Z]")


def builtin_mappings_dir() -> Path:
    """The ``mappings/hl7v2`` data folder (data only: no project code is imported)."""
    return Path(str(files("mappings") / "hl7v2"))


class _Map:
    __slots__ = ("displays", "targets")

    def __init__(self) -> None:
        self.displays: dict[str, str] = {}
        # target system → source code → (target code, target display)
        self.targets: dict[str, dict[str, tuple[str, str | None]]] = {}

    def merge(self, concept_map: dict[str, Any]) -> None:
        for group in concept_map.get("group", []):
            target = group.get("target", "")
            table = self.targets.setdefault(target, {})
            for el in group.get("element", []):
                code = el.get("code")
                if not code:
                    continue
                if el.get("display"):
                    self.displays[code] = el["display"]
                for t in el.get("target", []):
                    if t.get("code") and t.get("equivalence") not in ("unmatched", "disjoint"):
                        table[code] = (t["code"], t.get("display"))
                        break
                else:
                    table.pop(code, None)


class CodeMaps:
    """Look-ups over the loaded ConceptMaps, by map id (``v2-0001``, ``assigning-authority``).

    ``scoped`` gives the view for one sender: its own maps, then its country's, then the general.
    """

    def __init__(
        self, maps: dict[tuple[str, str], _Map], local_base: str, scope: tuple[str, ...] = ()
    ) -> None:
        self._maps = maps
        self.local_base = local_base
        self._scope = (*scope, "")

    def scoped(self, country: str, senders: tuple[str, ...] = ()) -> CodeMaps:
        """The maps as one sender sees them (``senders``: its keys, most specific first)."""
        scope = (*(f"sender:{s}" for s in senders if s), f"country:{country.upper()}")
        return CodeMaps(self._maps, self.local_base, scope)

    def _layers(self, map_id: str) -> list[_Map]:
        return [m for m in (self._maps.get((map_id, c)) for c in self._scope) if m is not None]

    def _hit(
        self, table: str, code: str, target: str | None = None
    ) -> tuple[str, tuple[str, str | None]] | None:
        """(target system, (code, display)) of the first layer that maps the code."""
        for m in self._layers(f"v2-{table}"):
            for system, codes in m.targets.items():
                if target is None or system == target:
                    hit = codes.get(code)
                    if hit is not None:
                        return system, hit
        return None

    def _display(self, table: str, code: str) -> str:
        return next(
            (m.displays[code] for m in self._layers(f"v2-{table}") if code in m.displays), ""
        )

    def translate(self, table: str, code: str, target: str | None = None) -> str | None:
        """The FHIR code for a v2 code (``target`` picks the target system), or None."""
        if not code:
            return None
        for m in self._layers(f"v2-{table}"):
            for system, codes in m.targets.items():
                if target is None or system == target:
                    hit = codes.get(code)
                    if hit is not None and system != V2_SYSTEM + table:
                        return hit[0]
        return None

    def coding(self, table: str, code: str) -> dict[str, str] | None:
        """The mapped FHIR Coding (system, code) for a v2 code, or None when unmapped."""
        found = self._hit(table, code) if code else None
        if found is None:
            return None
        system, (target_code, display) = found
        out = {"system": system, "code": target_code}
        display = display or (self._display(table, code) if system == V2_SYSTEM + table else None)
        if display:
            out["display"] = display
        return out

    def v2_coding(self, table: str, code: str, display: str = "") -> dict[str, str]:
        out = {"system": V2_SYSTEM + table, "code": code}
        display = display or self._display(table, code)
        if display:
            out["display"] = display
        return out

    def concept(self, table: str, code: str, display: str = "") -> dict[str, Any]:
        """CodeableConcept: the mapped coding (if any) and always the original v2 coding."""
        original = self.v2_coding(table, code, display)
        mapped = self.coding(table, code)
        same = mapped is None or mapped["system"] == original["system"]
        codings = [original] if same else [mapped, original]
        out: dict[str, Any] = {"coding": codings}
        if display:
            out["text"] = display
        return out

    def known_system(self, name: str) -> str | None:
        """A v2 coding-system name (table 0396, e.g. ``I10``, ``ICD-10-CM``) → its URI, or None.
        Names are compared as sent, then in upper case, then without punctuation."""
        if not name:
            return None
        upper = name.upper()
        bare = _PUNCTUATION.sub("", upper)
        for m in self._layers("v2-0396"):
            table = m.targets.get(_RFC3986, {})
            hit = table.get(name) or table.get(upper)
            if hit is None and bare:
                hit = next(
                    (v for k, v in table.items() if _PUNCTUATION.sub("", k.upper()) == bare), None
                )
            if hit:
                return hit[0]
        if upper.startswith("HL7") and upper[3:].isdigit():
            return V2_SYSTEM + upper[3:].zfill(4)
        return None

    def coding_system(self, name: str) -> str:
        """A v2 coding-system name → a code system URI; an unknown or local one (``99…``,
        ``SNM`` unless a sender's map says) keeps its name inside a URI rather than being dropped."""
        if not name:
            return ""
        return self.known_system(name) or self.as_sent_system(name)

    def as_sent_system(self, name: str) -> str:
        """The URI that keeps a coding-system name exactly as the sender wrote it."""
        return f"{self.local_base}coding-system:{quote(name, safe='')}"

    def authority_system(self, *keys: str) -> str | None:
        """Identifier system configured for an assigning authority (namespace or universal id)."""
        for m in self._layers("assigning-authority"):
            table = m.targets.get(_RFC3986, {})
            for key in keys:
                if key and key in table:
                    return table[key][0]
        return None


def _contexts(doc: dict[str, Any]) -> list[str]:
    """The scopes a ConceptMap is narrowed to: ``country:XX``, ``sender:KEY``; [""] if none."""
    out = [
        f"country:{c['code'].upper()}"
        for j in doc.get("jurisdiction") or []
        for c in j.get("coding") or []
        if c.get("system") == _ISO3166 and c.get("code")
    ]
    for ctx in doc.get("useContext") or []:
        code = ctx.get("code") or {}
        if (code.get("system"), code.get("code")) != SENDER_CONTEXT:
            continue
        value = ctx.get("valueCodeableConcept") or {}
        keys = [c.get("code") for c in value.get("coding") or []] + [value.get("text")]
        out.extend(f"sender:{k}" for k in keys if k)
    return out or [""]


def _read_dir(directory: Path, maps: dict[tuple[str, str], _Map]) -> None:
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("resourceType") != "ConceptMap" or not doc.get("id"):
            continue
        for context in _contexts(doc):
            maps.setdefault((doc["id"], context), _Map()).merge(doc)


@lru_cache(maxsize=16)
def load_code_maps(
    user_dir: str | None = None, local_base: str = "urn:fhir-gateway:hl7v2:"
) -> CodeMaps:
    """Built-in maps, then the user's directory on top (cached per directory)."""
    maps: dict[tuple[str, str], _Map] = {}
    _read_dir(builtin_mappings_dir(), maps)
    if user_dir:
        _read_dir(Path(user_dir), maps)
    return CodeMaps(maps, local_base)
