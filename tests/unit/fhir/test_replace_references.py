"""A transaction rewrites its entries' references to the Bundle's own entries on their JSON text;
the copy is the one a walk over the resource makes, whatever the strings around them hold."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from fhir_gateway.fhir.references import (
    iter_references,
    json_targets,
    reference_strings,
    replace_references,
)

TARGETS = {
    "urn:uuid:0c1f6a3e-0000-4000-8000-000000000001": "Patient/p1",
    "urn:uuid:0c1f6a3e-0000-4000-8000-000000000002": "Encounter/e1",
    "http://ehr.example/fhir/Practitioner/9": "Practitioner/d9",
    "Patient/p1": "Patient/p2",  # a target that is itself a key: replaced once, not twice
}
UNDECIDED = ("urn:uuid:not-in-the-bundle", "Patient?identifier=urn:mrn|1")
_TEXT = st.sampled_from(
    [
        *TARGETS,
        *UNDECIDED,
        "Organization/o1",
        '"reference":"urn:uuid:x"',
        'a "quote"',
        "back\\slash",
        "ü €",
        "",
    ]
)


def _undecided(ref: str) -> bool:
    return ref in UNDECIDED


def _walk(node: Any) -> Any:
    """What the transaction's walk does with the Bundle's references."""
    if isinstance(node, dict):
        return {
            k: (TARGETS.get(v, v) if k == "reference" and isinstance(v, str) else _walk(v))
            for k, v in node.items()
        }
    if isinstance(node, list):
        return [_walk(v) for v in node]
    return node


def _has_undecided(node: Any) -> bool:
    if isinstance(node, dict):
        return any(
            (k == "reference" and isinstance(v, str) and v not in TARGETS and _undecided(v))
            or _has_undecided(v)
            for k, v in node.items()
        )
    return isinstance(node, list) and any(_has_undecided(v) for v in node)


_JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**40), 2**40)
    | st.floats(allow_nan=False, allow_infinity=False)
    | _TEXT,
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(
            st.sampled_from(["reference", "subject", "text", "display", "x"]), children, max_size=3
        )
    ),
    max_leaves=12,
)


@settings(max_examples=300, deadline=None)
@given(
    st.dictionaries(
        st.sampled_from(["reference", "subject", "note", "extension"]), _JSON, max_size=4
    )
)
def test_the_copy_is_the_walks(body: dict[str, Any]) -> None:
    resource = {"resourceType": "Encounter", **body}
    replaced = replace_references(resource, json_targets(TARGETS), _undecided)
    if _has_undecided(resource):
        assert replaced is None  # the walk resolves or refuses those
    else:
        assert replaced == _walk(resource)
        assert replaced is not resource


@settings(max_examples=300, deadline=None)
@given(st.lists(_JSON, max_size=3), _JSON)
def test_the_references_read_from_the_text_are_the_walks(items: list[Any], more: Any) -> None:
    resource = {"resourceType": "Bundle", "entry": items, "reference": more}
    walked = [node[key] for node, key in iter_references(resource)]
    assert sorted(reference_strings(resource)) == sorted(walked)  # the same, in document order


def test_references_to_entries_are_replaced_and_text_is_kept() -> None:
    note = 'he said "reference":"urn:uuid:0c1f6a3e-0000-4000-8000-000000000001" \\'
    resource = {
        "resourceType": "Encounter",
        "subject": {"reference": "urn:uuid:0c1f6a3e-0000-4000-8000-000000000001"},
        "participant": [{"individual": {"reference": "http://ehr.example/fhir/Practitioner/9"}}],
        "basedOn": [{"reference": "Patient/p1"}],
        "text": {"div": note},
    }
    assert replace_references(resource, json_targets(TARGETS), _undecided) == {
        **resource,
        "subject": {"reference": "Patient/p1"},
        "participant": [{"individual": {"reference": "Practitioner/d9"}}],
        "basedOn": [{"reference": "Patient/p2"}],
    }
    assert replace_references({"x": 2**70}, {}, _undecided) is None  # not what orjson writes
    assert reference_strings({"x": 2**70, "subject": {"reference": "Patient/p"}}) == ["Patient/p"]
