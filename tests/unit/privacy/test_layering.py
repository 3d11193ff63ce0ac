"""The privacy module sits under everything that asks it: it imports no api, services or engine
module (security, the engines, notifications and store-level code import it, not the reverse)."""

from __future__ import annotations

import ast
from pathlib import Path

import fhir_gateway.privacy

_ABOVE = (
    "api",
    "services",
    "web",
    "cli",
    "careplans",
    "monitors",
    "notifications",
    "workflow",
    "security",
    "app",
)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
    return names


def test_privacy_imports_nothing_above_it():  # type: ignore[no-untyped-def]
    package = Path(fhir_gateway.privacy.__file__).parent
    above = {f"fhir_gateway.{name}" for name in _ABOVE}
    found = {
        f"{path.name}: {name}"
        for path in package.glob("*.py")
        for name in _imports(path)
        if any(name == a or name.startswith(a + ".") for a in above)
    }
    assert found == set()


def test_the_public_face_is_the_package():  # type: ignore[no-untyped-def]
    exported = set(fhir_gateway.privacy.__all__)
    assert {
        "evaluate_consent",
        "grants_of",
        "condition_labels",
        "is_part2_sender",
        "reference_to",
    } <= exported
    assert all(hasattr(fhir_gateway.privacy, name) for name in exported)
