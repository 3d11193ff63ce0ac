"""Code outside a package imports only the package's public face (its ``__init__``), never one of
its private modules (``fhir_gateway.x._y``). Tests may reach inside the package they test."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CHECKED = ("fhir_gateway", "adapters", "conformance", "bench")


def _imported(tree: ast.AST) -> list[tuple[int, str]]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.append((node.lineno, node.module))
            names += [(node.lineno, f"{node.module}.{alias.name}") for alias in node.names]
    return names


def _private_reach(module: str, path: Path) -> str | None:
    """The package whose private module ``module`` is, when ``path`` lies outside it."""
    parts = module.split(".")
    for depth, part in enumerate(parts[1:], start=1):
        if part.startswith("_") and not part.startswith("__"):
            package = ROOT.joinpath(*parts[:depth])
            return None if path.is_relative_to(package) else ".".join(parts[:depth])
    return None


def reaches_into_private_modules(paths: list[Path]) -> list[str]:
    found = []
    for path in paths:
        for line, module in _imported(ast.parse(path.read_text(), str(path))):
            package = module.startswith("fhir_gateway.") and _private_reach(module, path)
            if package:
                found.append(f"{path.relative_to(ROOT)}:{line} reaches into {package}")
    return list(dict.fromkeys(found))


def test_no_module_reaches_into_another_packages_private_module() -> None:
    paths = [p for top in CHECKED for p in sorted((ROOT / top).rglob("*.py"))]
    assert reaches_into_private_modules(paths) == []


def test_a_private_import_from_outside_is_found() -> None:
    outside = ROOT / "fhir_gateway" / "api" / "auth.py"
    inside = ROOT / "fhir_gateway" / "security" / "__init__.py"
    assert _private_reach("fhir_gateway.security._tokens.peek", outside) == "fhir_gateway.security"
    assert _private_reach("fhir_gateway.security._tokens", inside) is None
    assert _private_reach("fhir_gateway.security.logs", outside) is None
