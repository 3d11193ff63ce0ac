"""The layering contracts of pyproject.toml ([tool.importlinter]) hold for the tree, and they
really bite: the same contracts fail on a copy of the modules with one forbidden import added to
each of a few of them."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _lint(cwd: Path) -> subprocess.CompletedProcess[str]:
    # In a process of its own: import-linter imports the packages from the working directory.
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    code = "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
    return subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )


def test_the_tree_keeps_its_import_contracts() -> None:
    done = _lint(ROOT)
    assert done.returncode == 0, done.stdout[-3000:]
    assert "0 broken" in done.stdout


def test_a_forbidden_import_breaks_a_contract(tmp_path: Path) -> None:
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    for module in _contract_modules():  # an empty module for every name the contracts use
        path = tmp_path.joinpath(*module.split("."))
        path.mkdir(parents=True, exist_ok=True)
        (path / "__init__.py").write_text("")
    # The deliberately wrong import: an adapter reaching into the service.
    (tmp_path / "adapters" / "hl7v2.py").write_text("import fhir_gateway.store\n")
    (tmp_path / "fhir_gateway" / "store" / "repository.py").write_text(
        "from fhir_gateway import api\n"
    )
    # The HTTP door's helper imported from below it (security -> api, as the middleware once did).
    (tmp_path / "fhir_gateway" / "security" / "policy.py").write_text(
        "from fhir_gateway.api import responses\n"
    )
    # The API holding the handles it passes on (allowed), and querying the store itself (not).
    for module in ("db", "budget", "repository"):
        (tmp_path / "fhir_gateway" / "store" / f"{module}.py").touch()
    (tmp_path / "fhir_gateway" / "api" / "deps.py").write_text("import fhir_gateway.store.db\n")
    (tmp_path / "fhir_gateway" / "api" / "cancel.py").write_text(
        "import fhir_gateway.store.budget\n"
    )
    (tmp_path / "fhir_gateway" / "api" / "resources.py").write_text(
        "from fhir_gateway.store import repository\n"
    )
    # The privacy module asking the row policy above it.
    (tmp_path / "fhir_gateway" / "privacy" / "consent.py").write_text(
        "import fhir_gateway.security\n"
    )
    done = _lint(tmp_path)
    assert done.returncode != 0
    assert "adapters never import fhir_gateway BROKEN" in done.stdout
    assert "the store never imports services, api, web pages or engines BROKEN" in done.stdout
    assert "the layers import only downwards BROKEN" in done.stdout
    assert "fhir_gateway.security.policy -> fhir_gateway.api" in done.stdout
    assert (
        "the privacy module imports only the store, FHIR helpers and settings BROKEN" in done.stdout
    )


def _contract_modules() -> set[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    names = set(config["root_packages"])
    for contract in config["contracts"]:
        names.update(contract.get("source_modules", []), contract.get("forbidden_modules", []))
        for layer in contract.get("layers", []):  # "a | b" siblings that may not import each other
            names.update(name.strip() for name in layer.replace(":", "|").split("|"))
    return names
