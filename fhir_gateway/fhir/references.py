"""FHIR references as values: ``Type/id`` parsed once, not re-split everywhere.

    >>> Reference.parse("http://ehr.example/fhir/Patient/123/_history/2")
    Reference(type='Patient', id='123', version='2', base='http://ehr.example/fhir/')
    >>> Reference.parse("Patient/123").relative
    'Patient/123'
    >>> Reference.id_of("Patient/123", "Patient")
    '123'

``iter_references`` finds every ``reference`` string in a resource, so that a transaction can
rewrite ``urn:uuid:`` references in place; ``replace_references`` copies a resource with some
references replaced, on its JSON text.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import orjson

__all__ = [
    "Reference",
    "iter_references",
    "json_targets",
    "reference_strings",
    "replace_references",
]

# The FHIR R4 reference regex (http.html#general), with any capitalised type name allowed.
_ID = r"[A-Za-z0-9\-.]{1,64}"
_LITERAL = re.compile(
    rf"(?P<base>(?:https?://[^/?#\s]+/(?:[^/?#\s]+/)*?)?)"
    rf"(?P<type>[A-Z][A-Za-z]+)/(?P<id>{_ID})(?:/_history/(?P<version>{_ID}))?"
)
_URN = re.compile(r"urn:(?:uuid|oid):[^\s]+")  # lenient: the id of a Bundle entry, not checked


@dataclass(frozen=True, slots=True)
class Reference:
    """A literal reference. ``type`` is None only for a ``urn:uuid:``/``urn:oid:`` one, whose
    ``id`` is then the whole URN (it names a Bundle entry, not a server resource)."""

    type: str | None
    id: str
    version: str | None = None
    base: str | None = None

    @classmethod
    def parse(cls, text: Any) -> Reference | None:
        """``Type/id``, ``Type/id/_history/v``, ``http(s)://…/Type/id[/_history/v]`` or a URN.

        None for what is not a literal reference to a resource: ``#contained``, conditional
        references (``Patient?identifier=…``), empty or malformed text.
        """
        if not isinstance(text, str):
            return None
        if text.startswith("urn:"):
            return cls(None, text) if _URN.fullmatch(text) else None
        match = _LITERAL.fullmatch(text)
        if match is None:
            return None
        return cls(match["type"], match["id"], match["version"], match["base"] or None)

    @classmethod
    def parse_relative(cls, text: Any, res_type: str | None = None) -> Reference | None:
        """A plain ``Type/id`` (of ``res_type`` when given); None for anything else: a base, a
        version, a URN, another type, malformed text. Where code expects a local reference."""
        reference = cls.parse(text)
        if reference is None or reference.base or reference.version or reference.is_urn:
            return None
        return reference if res_type in (None, reference.type) else None

    @classmethod
    def id_of(cls, text: Any, res_type: str | None = None) -> str | None:
        """The id of a plain ``Type/id`` (of ``res_type`` when given), else None (as
        ``parse_relative``)."""
        reference = cls.parse_relative(text, res_type)
        return reference.id if reference is not None else None

    @property
    def is_urn(self) -> bool:
        return self.type is None

    @property
    def relative(self) -> str:
        """``Type/id`` without base or version (the URN itself for a URN)."""
        return self.id if self.type is None else f"{self.type}/{self.id}"

    def __str__(self) -> str:
        text = f"{self.base or ''}{self.relative}"
        return f"{text}/_history/{self.version}" if self.version else text


def iter_references(resource: Any) -> Iterator[tuple[dict[str, Any], str]]:
    """Yield (object, key) for every ``reference`` string in ``resource``, however deep: in
    contained resources, Bundle entries and Parameters values and parts alike.

    Set ``obj[key] = new`` to rewrite one in place; the walk tolerates that. Iterative, so a deep
    document does not exhaust the Python stack.
    """
    stack: list[Any] = [resource]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if isinstance(node.get("reference"), str):
                yield node, "reference"
            stack.extend(reversed([v for v in node.values() if isinstance(v, dict | list)]))
        elif isinstance(node, list):
            stack.extend(reversed([v for v in node if isinstance(v, dict | list)]))


# A ``"reference": "…"`` member as orjson writes it (no spaces): a quote inside a string is
# escaped, so the pattern never starts inside another string.
_REFERENCE_MEMBER = re.compile(rb'"reference":("(?:[^"\\]|\\.)*")')


class _UndecidedReference(Exception):
    pass


def replace_references(
    resource: dict[str, Any], targets: Mapping[bytes, bytes], undecided: Callable[[str], bool]
) -> dict[str, Any] | None:
    """A copy of ``resource`` in which every ``reference`` string that is a key of ``targets``
    (``json_targets``) is its value, made on the JSON text (a transaction's entries: several
    times faster than a walk in Python). None when a reference not in ``targets`` is
    ``undecided`` (the caller resolves it otherwise, or refuses it), or when the resource is not
    plain JSON."""
    try:
        text = orjson.dumps(resource)
    except TypeError:
        return None

    def replaced(member: re.Match[bytes]) -> bytes:
        value = member.group(1)
        target = targets.get(value)
        if target is not None:
            return b'"reference":' + target
        if undecided(orjson.loads(value)):
            raise _UndecidedReference
        return member.group(0)

    try:
        return orjson.loads(_REFERENCE_MEMBER.sub(replaced, text))  # type: ignore[no-any-return]
    except _UndecidedReference:
        return None


def reference_strings(resource: Any) -> list[str]:
    """Every ``reference`` string in ``resource`` that ``iter_references`` finds, in document
    order; read from its JSON text (C speed: the labels of every write ask)."""
    try:
        text = orjson.dumps(resource)
    except TypeError:
        return [str(node[key]) for node, key in iter_references(resource)]
    return [orjson.loads(value) for value in _REFERENCE_MEMBER.findall(text)]


def json_targets(targets: Mapping[str, str]) -> dict[bytes, bytes]:
    """reference → replacement, both as JSON strings, for ``replace_references``."""
    return {orjson.dumps(k): orjson.dumps(v) for k, v in targets.items()}
