"""Parsing FHIR JSON on the way in; validating every resource before it is written.

``parse_json`` turns request bytes into Python values (orjson) and refuses hostile nesting and
documents of more values than a limit (every value costs validation and index work: 80,000 names
in one Patient took 24 s to store, 200,000 more than a minute);
``validate_resource`` checks a resource against FHIR R4: what the fhir.resources R4B model of
its type refuses and what the official FHIR R4 JSON schema of its type
(``fhir_gateway/data/fhir.schema.json``) refuses. Each of the two functions raises
``InvalidRequest`` (400) whose issues name the failing element as a FHIRPath-like expression
(``Patient.name[0].given``).
pydantic's ``ValidationError`` is translated here and nowhere else.

Neither validator alone is enough: the models let wrong JSON types and codes outside required
value sets through (``"active": 1``, ``"gender": "bogus"``), the schema lets through a missing
required element, two types of one [x] element and 30 February. A valid document (nearly all of
them) meets one cheap pass: fastjsonschema's check, compiled to Python once per type on first
use (about 0.1 s a type), and ``model_rules``' walk of what only the models refuse. A document
either doubts meets the models, then jsonschema, whose errors name the elements, so that the
issues are what they always were.

Before both, a cheap pass over the JSON enforces rules of FHIR's JSON format that the models
let through: no empty objects or arrays, no null outside arrays, every nested ``resourceType``
(contained, Bundle.entry.resource, Parameters.parameter.resource) a known R4 type, resource ids of
at most 64 characters.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import fastjsonschema
import orjson
from fhir.resources.R4B import get_fhir_model_class
from jsonschema import Draft6Validator
from pydantic import ValidationError

from fhir_gateway.errors import InvalidRequest, Issue, PayloadTooLarge
from fhir_gateway.fhir.model_rules import may_break_model_rules

__all__ = ["parse_json", "validate_resource"]

# Resource types R4B added and R4 (the wire version) does not have, and the abstract ones:
# refused as unknown. (R4 types R4B dropped, MedicinalProduct* and a few Substance*, are unknown
# to the models anyway; none is used here.)
_NOT_R4 = frozenset(
    {
        "DomainResource",
        "Resource",
        "SubstanceDefinition",
        "AdministrableProductDefinition",
        "Citation",
        "ClinicalUseDefinition",
        "EvidenceReport",
        "Ingredient",
        "ManufacturedItemDefinition",
        "MedicinalProductDefinition",
        "NutritionProduct",
        "PackagedProductDefinition",
        "RegulatedAuthorization",
        "SubscriptionStatus",
        "SubscriptionTopic",
    }
)
_MAX_ID_LENGTH = 64
_MAX_ISSUES = 50  # a hostile document could produce thousands; the first ones are enough

_Path = tuple[Any, ...]  # a linked list (parent, key): built per node without joining strings
_Resources = list[tuple[dict[str, Any], _Path]]  # a resource and those nested in it, with paths


# --------------------------------------------------------------------------------------------
# parse_json
# --------------------------------------------------------------------------------------------


def parse_json(
    body: bytes | bytearray | memoryview | str, *, max_depth: int, max_values: int | None = None
) -> Any:
    """Parse a JSON body; InvalidRequest if it is not JSON or nests deeper than ``max_depth``,
    PayloadTooLarge (413) if it holds more than ``max_values`` values (objects, arrays, scalars)."""
    try:
        value = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        if "depth" in exc.msg or "recursion" in exc.msg:  # orjson's own limit (1024)
            raise _too_deep(max_depth) from exc
        raise InvalidRequest(
            f"Invalid JSON at line {exc.lineno}, column {exc.colno} "
            f"(character {exc.pos}): {exc.msg}"
        ) from exc
    _check_shape(value, max_depth, max_values)
    return value


def _too_deep(max_depth: int) -> InvalidRequest:
    return InvalidRequest(f"The JSON document nests deeper than {max_depth} levels")


def _check_shape(value: Any, max_depth: int, max_values: int | None) -> None:
    """Level by level, iteratively, so that a hostile document cannot exhaust the stack; the
    values are counted on the way, in time linear in the document."""
    level = [value] if isinstance(value, dict | list) else []
    depth, values = 0, 1
    while level:
        depth += 1
        if depth > max_depth:
            raise _too_deep(max_depth)
        below: list[Any] = []
        for node in level:
            children = node.values() if isinstance(node, dict) else node
            values += len(children)
            below.extend([child for child in children if isinstance(child, dict | list)])
        if max_values is not None and values > max_values:
            raise PayloadTooLarge(
                f"The JSON document holds more than {max_values} values (limit max_json_values)"
            )
        level = below


# --------------------------------------------------------------------------------------------
# validate_resource
# --------------------------------------------------------------------------------------------


def validate_resource(resource: Any, *, expected_type: str | None = None) -> None:
    """Raise InvalidRequest unless ``resource`` is a valid R4 resource (of ``expected_type``).

    A valid resource, whoever wrote it (a client, an adapter, an engine), meets one pass: the
    JSON rules, the JSON schema's compiled check and the walk of what only the models refuse
    (``model_rules``: required elements, one type per [x] element, real dates, integer
    ranges); together they refuse what the models and the schema refuse, at a fraction of the
    models' cost. A resource any of them doubts meets both validators in full, the models then
    the schema, so that the issues a client reads are the models' first, as they always were."""
    if not isinstance(resource, dict):
        raise InvalidRequest("A resource must be a JSON object")
    resource_type = resource.get("resourceType")
    if not isinstance(resource_type, str) or not resource_type:
        raise InvalidRequest("The resource has no resourceType", expression=["resourceType"])
    if expected_type is not None and resource_type != expected_type:
        raise InvalidRequest(
            f"resourceType is {resource_type!r}, expected {expected_type!r}",
            expression=["resourceType"],
        )
    model = _model_class(resource_type)
    if model is None:
        raise InvalidRequest(f"Unknown resourceType {resource_type!r}", expression=["resourceType"])
    resources = _check_json_rules(resource, resource_type)
    if _passes_fast_check(resources) and not may_break_model_rules(resource, model):
        return
    try:
        model.model_validate(resource)
    except ValidationError as exc:
        issues = _issues(resource_type, exc)
        raise InvalidRequest(_summary(resource_type, issues), issues=issues) from exc
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        # fhir.resources raises these, not ValidationError, for a few malformed shapes.
        raise InvalidRequest(f"{resource_type} is not a valid resource: {exc}") from exc
    _raise_schema_issues(resources, resource_type)


def _raise_schema_issues(resources: _Resources, resource_type: str) -> None:
    issues = _schema_issues(resources, resource_type)
    if issues:
        raise InvalidRequest(_summary(resource_type, issues), issues=issues)


_SCHEMA_FILE = Path(__file__).resolve().parent.parent / "data" / "fhir.schema.json"


@functools.cache
def _schema_definitions() -> dict[str, Any]:
    definitions = orjson.loads(_SCHEMA_FILE.read_bytes())["definitions"]
    # The schema checks a nested resource (contained, Bundle.entry.resource) with a oneOf over all
    # 146 types: seconds per Bundle. Nested resources are checked one by one instead (below).
    definitions["ResourceList"] = {"type": "object"}
    # The published definitions of complex types and resources list their properties but not
    # ``"type": "object"``, so a string or number where an Identifier belongs met them.
    for definition in definitions.values():
        if "properties" in definition and "type" not in definition:
            definition["type"] = "object"
    # Element is what a primitive's ``_x`` holds: null is its placeholder in a ``_given`` array
    # (the JSON rules refuse a null anywhere else).
    definitions["Element"]["type"] = ["object", "null"]
    return definitions  # type: ignore[no-any-return]


@functools.cache
def _schema_validator(resource_type: str) -> Draft6Validator | None:
    definitions = _schema_definitions()
    if resource_type not in definitions:
        return None
    return Draft6Validator({"$ref": f"#/definitions/{resource_type}", "definitions": definitions})


@functools.cache
def _fast_definitions() -> dict[str, Any]:
    # fastjsonschema cannot write the code for a failing `const` without detailed exceptions
    # (KeyError 'definition_rule', 2.22.3); `enum` of the one value means the same in draft-06.
    return _const_as_enum(_schema_definitions())  # type: ignore[no-any-return]


def _const_as_enum(node: Any) -> Any:
    if isinstance(node, dict):
        return {
            ("enum" if key == "const" else key): (
                [value] if key == "const" else _const_as_enum(value)
            )
            for key, value in node.items()
        }
    if isinstance(node, list):
        return [_const_as_enum(value) for value in node]
    return node


@functools.cache
def _fast_check(resource_type: str) -> Callable[[Any], Any] | None:
    """The type's schema as Python code (None: not in the schema, or not compilable)."""
    definitions = _fast_definitions()
    if resource_type not in definitions:
        return None
    try:
        return fastjsonschema.compile(
            {"$ref": f"#/definitions/{resource_type}", "definitions": definitions},
            use_formats=False,  # as jsonschema without a format checker
            detailed_exceptions=False,  # the code stays small; jsonschema gives the details
        )
    except fastjsonschema.JsonSchemaDefinitionException:
        return None


def _passes_fast_check(resources: _Resources) -> bool:
    """True when fastjsonschema accepts the resource and every resource nested in it; False
    also when it cannot tell (a type it could not compile): jsonschema decides then."""
    for node, _path in resources:
        resource_type = node["resourceType"]
        check = _fast_check(resource_type)
        if check is None:
            if resource_type in _fast_definitions():
                return False
            continue  # not in the schema: jsonschema skips it as well
        try:
            check(node)
        except fastjsonschema.JsonSchemaException:
            return False
    return True


def _schema_issues(resources: _Resources, resource_type: str) -> list[Issue]:
    """``resources``: the resource and every resource nested in it (``_check_json_rules``),
    each checked against its own type (the schema's ResourceList is left out, above)."""
    if _passes_fast_check(resources):
        return []
    return _detailed_schema_issues(resources, resource_type)


def _detailed_schema_issues(resources: _Resources, resource_type: str) -> list[Issue]:
    issues: list[Issue] = []
    for node, path in resources:
        validator = _schema_validator(node["resourceType"])
        if validator is None:
            continue
        for error in validator.iter_errors(node):
            message = error.message if len(error.message) <= 200 else error.message[:197] + "..."
            where = _expression(resource_type, _keys(path) + tuple(error.absolute_path))
            issues.append(Issue(message, code="value", expression=[where]))
            if len(issues) >= _MAX_ISSUES:
                return issues
    return issues


@functools.cache
def _model_class(resource_type: str) -> Any:
    if resource_type in _NOT_R4:
        return None
    try:
        model = get_fhir_model_class(resource_type)
    except (KeyError, ValueError, ImportError, AttributeError):
        return None
    # get_fhir_model_class also knows data types (HumanName); only resources have a type here.
    return model if model.has_resource_base() else None


def _summary(resource_type: str, issues: list[Issue]) -> str:
    first = issues[0]
    where = first.expression[0] if first.expression else resource_type
    more = f" (and {len(issues) - 1} more)" if len(issues) > 1 else ""
    return f"Invalid {resource_type}: {where}: {first.diagnostics}{more}"


# --------------------------------------------------------------------------------------------
# Translating pydantic errors
# --------------------------------------------------------------------------------------------

_ISSUE_CODES = {
    "missing": "required",
    "model_field_validation.missing": "required",
    "extra_forbidden": "structure",
    "list_type": "structure",
    "model_type": "structure",
    "json_invalid": "structure",
}


def _issues(resource_type: str, exc: ValidationError) -> list[Issue]:
    issues = []
    for error in exc.errors(include_url=False)[:_MAX_ISSUES]:
        expression = _expression(resource_type, error["loc"])
        issues.append(
            Issue(
                _message(error),
                code=_ISSUE_CODES.get(error["type"], "value"),
                expression=[expression],
            )
        )
    return issues


def _expression(resource_type: str, loc: tuple[int | str, ...]) -> str:
    """('name', 0, 'given') → Patient.name[0].given."""
    out = resource_type
    previous: int | str = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part == "root" and isinstance(previous, str) and previous.startswith("_"):
            pass  # pydantic's name for the inside of a primitive's extension (`_birthDate`)
        elif part == "resource_type":
            out += ".resourceType"
        elif part.replace("_", "").isalnum():
            out += f".{part}"
        # anything else (union tags like "function-after[…]") is pydantic's, not an element
        previous = part
    return out


def _message(error: Any) -> str:
    kind = error["type"]
    if kind in ("missing", "model_field_validation.missing"):
        return "a required element is missing"
    if kind == "extra_forbidden":
        return "unknown element"
    if kind == "json_invalid":
        return "must be a JSON object"
    message = str(error["msg"]).removeprefix("Value error, ")
    given = error.get("input")
    if not isinstance(given, str | int | float | bool):
        return message  # a whole object or list would swamp the message
    shown = repr(given)
    return f"{message} (got {shown if len(shown) <= 60 else shown[:57] + '...'})"


# --------------------------------------------------------------------------------------------
# FHIR JSON rules the models do not check
# --------------------------------------------------------------------------------------------


def _check_json_rules(resource: dict[str, Any], resource_type: str) -> _Resources:
    """Refuse the first violation; else the resource and every resource nested in it, with its
    path, found on the same walk (the schema pass checks each by its own type)."""
    resources: _Resources = []
    for reason, path in _json_rule_violations(resource, resources):
        raise InvalidRequest(
            f"Invalid {resource_type}: {_render(resource_type, path)}: {reason}",
            expression=[_render(resource_type, path)],
        )
    return resources


def _json_rule_violations(
    resource: dict[str, Any], resources: _Resources
) -> Iterator[tuple[str, _Path]]:
    """The violations, in document order; fills ``resources`` on the way."""
    stack: list[tuple[Any, _Path]] = [(resource, ())]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            if not node:
                yield "empty objects are not allowed in FHIR JSON", path
            if isinstance(node.get("resourceType"), str):
                resources.append((node, path))
            if "resourceType" in node and path:
                yield from _nested_resource_violations(node, path)
            if "fhir_comments" in node:
                yield "unknown element", (path, "fhir_comments")
            for key, child in node.items():
                if child is None:
                    yield "null is only allowed inside arrays", (path, key)
                stack.append((child, (path, key)))
        elif isinstance(node, list):
            if not node:
                yield "empty arrays are not allowed in FHIR JSON", path
            stack.extend((child, (path, index)) for index, child in enumerate(node))
    if isinstance(resource.get("id"), str) and len(resource["id"]) > _MAX_ID_LENGTH:
        yield f"an id has at most {_MAX_ID_LENGTH} characters", ((), "id")


def _nested_resource_violations(node: dict[str, Any], path: _Path) -> Iterator[tuple[str, _Path]]:
    nested_type = node["resourceType"]
    if not isinstance(nested_type, str) or _model_class(nested_type) is None:
        yield f"unknown resourceType {nested_type!r}", (path, "resourceType")
    elif isinstance(node.get("id"), str) and len(node["id"]) > _MAX_ID_LENGTH:
        yield f"an id has at most {_MAX_ID_LENGTH} characters", (path, "id")


def _render(resource_type: str, path: _Path) -> str:
    return _expression(resource_type, _keys(path))


def _keys(path: _Path) -> tuple[Any, ...]:
    """(((), 'entry'), 0) → ('entry', 0)."""
    keys: list[Any] = []
    while path:
        path, key = path
        keys.append(key)
    return tuple(reversed(keys))
