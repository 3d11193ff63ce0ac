"""A merge that leaves its conflict markers behind still imports, renders and styles: a browser
drops the CSS rule after a marker without a word. No shipped or test file may hold one."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHIPPED = (
    "fhir_gateway",
    "adapters",
    "mappings",
    "conformance",
    "bench",
    "tests",
    "scripts",
    ".ci",
)
NOT_OURS = frozenset({"node_modules", "venv", "__pycache__", ".pytest_cache"})
MARKER = re.compile(rb"^(<{7} |={7}$|>{7} )", re.MULTILINE)


def _files() -> list[Path]:
    found = [ROOT / "README.md", ROOT / "pyproject.toml"]
    for top in SHIPPED:
        found.extend(
            p for p in (ROOT / top).rglob("*") if p.is_file() and NOT_OURS.isdisjoint(p.parts)
        )
    return found


def test_no_file_holds_a_merge_conflict_marker() -> None:
    marked = [str(p.relative_to(ROOT)) for p in _files() if MARKER.search(p.read_bytes())]
    assert marked == []


def test_the_check_finds_a_marker() -> None:
    assert MARKER.search(b"a { }\n<<<<<<< HEAD\n.b { }\n=======\n.c { }\n>>>>>>> inbox\n")
