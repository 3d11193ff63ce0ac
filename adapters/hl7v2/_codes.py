"""HL7 table → FHIR code maps, read from FHIR ConceptMaps.

The project's maps live in the ``mappings/hl7v2/`` package; a user directory of ConceptMaps with
the same ``id`` overrides them code by code (a new id adds a map). An unmapped code is never
dropped: callers keep it with its v2 system (``CodeableConcept``) or report it (``code``).
"""

from __future__ import annotations

import json
from functools import lru_cache
from importlib.resources import files
from pathlib import Path
from typing import Any
from urllib.parse import quote

__all__ = ["CodeMaps", "load_code_maps", "V2_SYSTEM", "builtin_mappings_dir"]

V2_SYSTEM = "http://terminology.hl7.org/CodeSystem/v2-"
_RFC3986 = "urn:ietf:rfc:3986"


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
    """Look-ups over the loaded ConceptMaps, by map id (``v2-0001``, ``assigning-authority``)."""

    def __init__(self, maps: dict[str, _Map], local_base: str) -> None:
        self._maps = maps
        self.local_base = local_base

    def translate(self, table: str, code: str, target: str | None = None) -> str | None:
        """The FHIR code for a v2 code (``target`` picks the target system), or None."""
        m = self._maps.get(f"v2-{table}")
        if m is None or not code:
            return None
        for system, codes in m.targets.items():
            if target is None or system == target:
                hit = codes.get(code)
                if hit is not None and system != V2_SYSTEM + table:
                    return hit[0]
        return None

    def coding(self, table: str, code: str) -> dict[str, str] | None:
        """The mapped FHIR Coding (system, code) for a v2 code, or None when unmapped."""
        m = self._maps.get(f"v2-{table}")
        if m is None or not code:
            return None
        for system, codes in m.targets.items():
            hit = codes.get(code)
            if hit is not None:
                out = {"system": system, "code": hit[0]}
                display = hit[1] or (m.displays.get(code) if system == V2_SYSTEM + table else None)
                if display:
                    out["display"] = display
                return out
        return None

    def v2_coding(self, table: str, code: str, display: str = "") -> dict[str, str]:
        out = {"system": V2_SYSTEM + table, "code": code}
        m = self._maps.get(f"v2-{table}")
        display = display or (m.displays.get(code, "") if m else "")
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

    def coding_system(self, name: str) -> str:
        """A v2 coding-system name (table 0396, e.g. ``I10``) → a code system URI."""
        if not name:
            return ""
        m = self._maps.get("v2-0396")
        table = m.targets.get(_RFC3986, {}) if m else {}
        hit = table.get(name) or table.get(name.upper())
        if hit:
            return hit[0]
        upper = name.upper()
        if upper.startswith("HL7") and upper[3:].isdigit():
            return V2_SYSTEM + upper[3:].zfill(4)
        # A local or unknown system keeps its name inside a URI rather than being dropped.
        return f"{self.local_base}coding-system:{quote(name, safe='')}"

    def authority_system(self, *keys: str) -> str | None:
        """Identifier system configured for an assigning authority (namespace or universal id)."""
        m = self._maps.get("assigning-authority")
        if m is None:
            return None
        table = m.targets.get(_RFC3986, {})
        for key in keys:
            if key and key in table:
                return table[key][0]
        return None


def _read_dir(directory: Path, maps: dict[str, _Map]) -> None:
    for path in sorted(directory.glob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("resourceType") != "ConceptMap" or not doc.get("id"):
            continue
        maps.setdefault(doc["id"], _Map()).merge(doc)


@lru_cache(maxsize=16)
def load_code_maps(
    user_dir: str | None = None, local_base: str = "urn:fhir-gateway:hl7v2:"
) -> CodeMaps:
    """Built-in maps, then the user's directory on top (cached per directory)."""
    maps: dict[str, _Map] = {}
    _read_dir(builtin_mappings_dir(), maps)
    if user_dir:
        _read_dir(Path(user_dir), maps)
    return CodeMaps(maps, local_base)
