"""No two classes share a name across the project's packages: a name says which thing it holds,
so an import of the wrong one cannot type-check by accident."""

from __future__ import annotations

import ast
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("fhir_gateway", "adapters", "conformance")


def classes_defined_twice(root: Path, paths: list[Path]) -> dict[str, list[str]]:
    where: dict[str, list[str]] = defaultdict(list)
    for path in paths:
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef):
                where[node.name].append(f"{path.relative_to(root)}:{node.lineno}")
    return {name: places for name, places in where.items() if len(places) > 1}


def test_every_class_name_is_defined_once() -> None:
    paths = [p for top in PACKAGES for p in sorted((ROOT / top).rglob("*.py"))]
    assert classes_defined_twice(ROOT, paths) == {}


def test_a_second_class_of_one_name_is_found(tmp_path: Path) -> None:
    (tmp_path / "store.py").write_text("class Result:\n    pass\n")
    (tmp_path / "workers.py").write_text("import x\n\n\nclass Result(x.Base):\n    pass\n")
    (tmp_path / "api.py").write_text("class WriteResult:\n    pass\n")
    found = classes_defined_twice(tmp_path, sorted(tmp_path.glob("*.py")))
    assert found == {"Result": ["store.py:1", "workers.py:4"]}
