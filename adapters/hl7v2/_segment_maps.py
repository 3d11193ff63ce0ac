"""Segment maps as data: ConceptMaps in ``mappings/hl7v2/segment-*.json`` say which v2 field
fills which FHIR element, and how its value is read; this module reads them and applies them.

An element of a map: ``code`` ``RXE-2`` (segment and field), ``target.code`` the FHIR path it
fills (``dosageInstruction[0].route``: ``[0]`` is the first item, ``[+]`` a new one), and
``target.dependsOn`` the properties of the reading: ``datatype`` (a reader of
``_medication_values``), and per reader ``unit``, ``maximum``, ``end`` (other fields of the same
segment), ``table``, ``system``, ``required``. A user directory's map with the same ``id``
replaces the built-in one.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

from ._codes import builtin_mappings_dir
from ._errors import HL7Error

__all__ = ["SegmentRule", "SegmentMap", "segment_map", "set_path"]

_SEGMENT_SOURCE = "urn:fhir-gateway:hl7v2:segment:"
_FIELD = re.compile(r"([A-Z][A-Z0-9]{2})-(\d{1,3})\Z")
_STEP = re.compile(r"([A-Za-z]+)(\[(?:0|\+)\])?\Z")


@dataclass(frozen=True, slots=True)
class SegmentRule:
    segment: str
    field: int
    target: str
    datatype: str
    props: tuple[tuple[str, str], ...] = ()

    def prop(self, name: str) -> str:
        return next((v for k, v in self.props if k == name), "")

    def other_field(self, name: str) -> int | None:
        """A field named by a property (``unit`` ``RXE-5``) of the same segment."""
        m = _FIELD.match(self.prop(name))
        return int(m.group(2)) if m and m.group(1) == self.segment else None


@dataclass(frozen=True, slots=True)
class SegmentMap:
    id: str
    resource: str
    rules: tuple[SegmentRule, ...]


def _rules(doc: dict[str, Any]) -> tuple[str, list[SegmentRule]]:
    resource = ""
    rules: list[SegmentRule] = []
    for group in doc.get("group") or []:
        source = str(group.get("source") or "")
        if not source.startswith(_SEGMENT_SOURCE):
            continue
        resource = str(group.get("target") or "").rsplit("/", 1)[-1]
        for element in group.get("element") or []:
            m = _FIELD.match(str(element.get("code") or ""))
            if m is None:
                continue
            for target in element.get("target") or []:
                props = tuple(
                    (str(d.get("property")), str(d.get("value")))
                    for d in target.get("dependsOn") or []
                )
                datatype = next((v for k, v in props if k == "datatype"), "")
                if target.get("code") and datatype:
                    rules.append(
                        SegmentRule(m.group(1), int(m.group(2)), target["code"], datatype, props)
                    )
    return resource, rules


def _read(directory: Path, found: dict[str, SegmentMap]) -> None:
    for path in sorted(directory.glob("segment-*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("resourceType") != "ConceptMap" or not doc.get("id"):
            continue
        resource, rules = _rules(doc)
        if resource and rules:
            found[doc["id"]] = SegmentMap(doc["id"], resource, tuple(rules))


@lru_cache(maxsize=16)
def _maps(user_dir: str | None) -> dict[str, SegmentMap]:
    found: dict[str, SegmentMap] = {}
    _read(builtin_mappings_dir(), found)
    if user_dir:
        _read(Path(user_dir), found)
    return found


def segment_map(map_id: str, user_dir: str | None = None) -> SegmentMap:
    found = _maps(user_dir).get(map_id)
    if found is None:
        raise HL7Error(f"the segment map {map_id!r} is missing from mappings/hl7v2")
    return found


def set_path(body: dict[str, Any], path: str, value: Any) -> bool:
    """Put ``value`` at ``path`` unless an earlier rule filled it (the first value wins)."""
    steps = path.split(".")
    node: Any = body
    for i, step in enumerate(steps):
        m = _STEP.match(step)
        if m is None:
            raise HL7Error(f"segment map target {path!r} is not a path")
        name, index = m.group(1), m.group(2)
        last = i == len(steps) - 1
        if index == "[+]":
            items = node.setdefault(name, [])
            if last:
                items.append(value)
                return True
            items.append({})
            node = items[-1]
        elif index == "[0]":
            items = node.setdefault(name, [{}] if not last else [])
            if last:
                if items:
                    return False
                items.append(value)
                return True
            node = items[0]
        elif last:
            if name in node:
                return False
            node[name] = value
            return True
        else:
            node = node.setdefault(name, {})
    return False
