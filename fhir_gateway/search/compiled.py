"""Search-parameter FHIRPath compiled once into plain Python getters, for write-time indexing.

fhirpathpy walks its parse tree for every resource: an index of 40 rows per discharge resource
pays that walk per parameter. The expressions of the search parameters are nearly all of a small
subset, compiled here from fhirpathpy's own parse tree into closures:

- a root type and member steps (``Patient.name.given``), choice types (``Observation.value``);
- ``ofType(T)``, parentheses, unions ``a | b``;
- ``where(resolve() is T)`` (our ``resolve()``: the type a literal reference names) and
  ``where(element = 'literal')``.

Anything else is not compiled (``compile_getter`` answers None) and stays on fhirpathpy. A getter
gives what fhirpathpy gives, value for value and in the same order: each value with the type
fhirpathpy gives its node (the model's ``path2Type``, choice suffixes, ``_element`` extensions as
their own values, contained resources typed by their ``resourceType``, untyped after a union).
Where fhirpathpy's answer depends on rules not copied here (a non-string ``resourceType``, an
equality on a Quantity), the getter raises :class:`Fallback` and the caller asks fhirpathpy.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from fhirpathpy.engine.nodes import ResourceNode, TypeInfo
from fhirpathpy.engine.util import uniq
from fhirpathpy.models import models as fhirpath_models
from fhirpathpy.parser import parse

__all__ = ["Fallback", "Getter", "Node", "compile_getter"]

Node = tuple[Any, Any]  # (fhirpathpy's node type or path, the JSON value)
Getter = Callable[[Mapping[str, Any]], list[Node]]
_Eval = Callable[[Mapping[str, Any]], list[Node]]
_Step = Callable[[list[Node]], list[Node]]

_MODEL = fhirpath_models["r4"]
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")
_LITERAL = re.compile(r"^'([A-Za-z0-9 _.:/#-]*)'$")
_QUANTITY_PATHS = frozenset({"Quantity", "System.Quantity"})  # where fhirpathpy compares UCUM-wise


_PLAIN = (str, int, float, list)  # JSON values that are not objects: no ABC check for them


def _is_mapping(data: Any) -> bool:
    return isinstance(data, dict) or (not isinstance(data, _PLAIN) and isinstance(data, Mapping))


class Fallback(Exception):
    """This resource takes a path of fhirpathpy not copied here: evaluate it with fhirpathpy."""


class _Unsupported(Exception):
    pass


ReferenceType = Callable[[str], str | None]


def compile_getter(expression: str, reference_type: ReferenceType) -> Getter | None:
    """A getter equal to fhirpathpy's evaluation of ``expression`` (with ``returnRawData`` and
    our ``resolve()``, which types a reference by ``reference_type``), or None when the
    expression is outside the compiled subset."""
    try:
        tree = parse(expression)
        evaluate = _Compiler(reference_type).expression(_only_child(tree))
    except _Unsupported:
        return None
    except Exception:  # noqa: BLE001 - an expression fhirpathpy cannot parse stays with it
        return None

    def getter(resource: Mapping[str, Any]) -> list[Node]:
        return [_final(node) for node in evaluate(resource) if not _dropped(node[1])]

    return getter


def _dropped(data: Any) -> bool:
    # returnRawData drops a primitive's extension-only twin (``{"extension": …}`` of ``_given``).
    return isinstance(data, dict) and len(data) == 1 and "extension" in data


def _final(node: Node) -> Node:
    # What extraction reads of another Mapping holding only extensions: nothing (None, None).
    data = node[1]
    if isinstance(data, dict) or not _is_mapping(data):
        return node
    return (None, None) if list(data) == ["extension"] else node


def _only_child(node: Mapping[str, Any]) -> Mapping[str, Any]:
    children = node.get("children") or []
    if len(children) != 1:
        raise _Unsupported
    return children[0]  # type: ignore[no-any-return]


def _identifier(node: Mapping[str, Any]) -> str:
    if node.get("type") != "Identifier":
        raise _Unsupported
    name = str(node.get("text") or "").replace("`", "")
    if not _NAME.match(name):
        raise _Unsupported
    return name


def _member_name(term: Mapping[str, Any]) -> str:
    """``name`` of a TermExpression → InvocationTerm → MemberInvocation → Identifier."""
    if term.get("type") != "TermExpression":
        raise _Unsupported
    invocation = _only_child(term)
    if invocation.get("type") != "InvocationTerm":
        raise _Unsupported
    member = _only_child(invocation)
    if member.get("type") != "MemberInvocation":
        raise _Unsupported
    return _identifier(_only_child(member))


class _Compiler:
    def __init__(self, reference_type: ReferenceType) -> None:
        self.reference_type = reference_type

    def expression(self, node: Mapping[str, Any]) -> _Eval:
        kind = node.get("type")
        children = node.get("children") or []
        if kind == "UnionExpression" and len(children) == 2:
            return _union(self.expression(children[0]), self.expression(children[1]))
        if kind == "InvocationExpression" and len(children) == 2:
            return _then(self.expression(children[0]), self.step(children[1]))
        if kind == "TermExpression":
            term = _only_child(node)
            if term.get("type") == "ParenthesizedTerm":
                return self.expression(_only_child(term))
            name = _member_name(node)
            if not name[0].isupper():  # a lower-case start is a member of the resource
                raise _Unsupported
            return _root(name)
        raise _Unsupported

    def step(self, node: Mapping[str, Any]) -> _Step:
        kind = node.get("type")
        if kind == "MemberInvocation":
            key = _identifier(_only_child(node))
            if key[0].isupper():  # fhirpathpy filters by resource type there
                raise _Unsupported
            return _member(key)
        if kind == "FunctionInvocation":
            call = _only_child(node)
            children = call.get("children") or []
            if call.get("type") != "Functn" or len(children) != 2:
                raise _Unsupported
            name = _identifier(children[0])
            argument = _only_child(children[1])
            if name == "ofType":
                return _of_type(_type_name(argument))
            if name == "where":
                return self.where(argument)
        raise _Unsupported

    def where(self, criterion: Mapping[str, Any]) -> _Step:
        kind = criterion.get("type")
        children = criterion.get("children") or []
        if len(children) != 2:
            raise _Unsupported
        if kind == "TypeExpression" and criterion.get("terminalNodeText") == ["is"]:
            if not _is_resolve_call(children[0]) or children[1].get("type") != "TypeSpecifier":
                raise _Unsupported
            return _where_resolves_to(_type_name(children[1]), self.reference_type)
        if kind == "EqualityExpression" and criterion.get("terminalNodeText") == ["="]:
            literal = _LITERAL.match(str(children[1].get("text") or ""))
            term = _only_child(children[1]) if children[1].get("type") == "TermExpression" else {}
            if literal is None or term.get("type") != "LiteralTerm":
                raise _Unsupported
            name = _member_name(children[0])
            if name[0].isupper():  # fhirpathpy tries a resource-type filter there
                raise _Unsupported
            return _where_equals(_member(name), literal.group(1))
        raise _Unsupported


def _type_name(node: Mapping[str, Any]) -> str:
    name = str(node.get("text") or "")
    if not _NAME.match(name):
        raise _Unsupported
    return name


def _is_resolve_call(term: Mapping[str, Any]) -> bool:
    if term.get("type") != "TermExpression":
        return False
    invocation = _only_child(term)
    function = _only_child(invocation) if invocation.get("type") == "InvocationTerm" else {}
    call = _only_child(function) if function.get("type") == "FunctionInvocation" else {}
    children = call.get("children") or []
    return len(children) == 1 and _identifier(children[0]) == "resolve"


# -- the steps -----------------------------------------------------------------------------------


def _root(type_name: str) -> _Eval:
    def root(resource: Mapping[str, Any]) -> list[Node]:
        # fhirpathpy: a leading capitalised name keeps the resource when it is of that type.
        return [(type_name, resource)] if resource["resourceType"] == type_name else []

    return root


def _then(first: _Eval, step: _Step) -> _Eval:
    return lambda resource: step(first(resource))


def _union(left: _Eval, right: _Eval) -> _Eval:
    def union(resource: Mapping[str, Any]) -> list[Node]:
        # fhirpathpy's distinct: first place, last value, by JSON text; the nodes lose their type.
        values = uniq([data for _, data in left(resource) + right(resource)])
        return [(_typed(None, data), data) for data in values]

    return union


def _typed(path: Any, data: Any) -> Any:
    """A node's type as fhirpathpy's ResourceNode sets it: a resource's own type wins."""
    if _is_mapping(data) and "resourceType" in data:
        path = data["resourceType"]
        if not isinstance(path, str):
            raise Fallback
    return path


@lru_cache(maxsize=4096)
def _child(path: str | None, key: str) -> tuple[bool, tuple[tuple[str, str, str], ...]]:
    """(is a choice, the (element, _element, type) candidates) of ``key`` under a node typed
    ``path``, from fhirpathpy's model as its member invocation reads it."""
    child = f"{path}.{key}" if path else f"_.{key}"
    child = _MODEL["pathsDefinedElsewhere"].get(child, child)
    path2type = _MODEL["path2Type"]
    choices = _MODEL["choiceTypePaths"].get(child)
    if choices:
        return True, tuple(
            (key + t, f"_{key}{t}", path2type.get(child + t, child + t)) for t in choices
        )
    if key == "extension":
        child = "Extension"
    return False, ((key, f"_{key}", path2type.get(child, child)),)


def _member(key: str) -> _Step:
    def member(nodes: list[Node]) -> list[Node]:
        out: list[Node] = []
        for path, data in nodes:
            if not _is_mapping(data):
                if key == "length":  # fhirpathpy's length of a string or list
                    raise Fallback
                continue
            choice, candidates = _child(path, key)
            for element, extension, child_type in candidates:
                value, twin = data.get(element), data.get(extension)
                if value is None and twin is None:
                    if choice:
                        continue
                    break
                for found in (value, twin):
                    if found is None:
                        continue
                    if isinstance(found, list):
                        out.extend((_typed(child_type, item), item) for item in found)
                    else:
                        out.append((_typed(child_type, found), found))
                break
        return out

    return member


def _of_type(name: str) -> _Step:
    spec = TypeInfo(name=name, namespace=None)

    def of_type(nodes: list[Node]) -> list[Node]:
        # fhirpathpy's own type test: its answer depends on the node and on whether a model
        # is installed (TypeInfo.model), so it is asked, not copied.
        return [
            node
            for node in nodes
            if TypeInfo.from_value(ResourceNode.create_node(node[1], node[0])).is_(spec)
        ]

    return of_type


def _where_resolves_to(name: str, reference_type: ReferenceType) -> _Step:
    def where(nodes: list[Node]) -> list[Node]:
        if nodes:
            TypeInfo.model = _MODEL  # type: ignore[assignment]  # as fhirpathpy's `is` does
        out = []
        for node in nodes:
            data = node[1]
            ref = data.get("reference") if _is_mapping(data) else None
            target = reference_type(ref) if isinstance(ref, str) else None
            if target and _is_type(target, name):
                out.append(node)
        return out

    return where


@lru_cache(maxsize=1024)
def _is_type(target: str, name: str) -> bool:
    # `resolve() is T` on our resolve()'s stub node of type ``target``, as fhirpathpy answers it.
    TypeInfo.model = _MODEL  # type: ignore[assignment]
    node = ResourceNode.create_node({"resourceType": target}, target)
    return bool(TypeInfo.from_value(node).is_(TypeInfo(name=name, namespace=None)))


def _where_equals(member: _Step, literal: str) -> _Step:
    def where(nodes: list[Node]) -> list[Node]:
        out = []
        for node in nodes:
            values = member([node])
            # fhirpathpy's `=`: empty is not true, two values are not equal to one.
            if len(values) != 1:
                continue
            path, data = values[0]
            if path in _QUANTITY_PATHS:
                raise Fallback
            if data == literal:
                out.append(node)
        return out

    return where
