"""Search-index extraction of what a discharge writes: compiled getters against fhirpathpy (issue 21).

Every resource version the intake writes is indexed at write time from the search parameters'
FHIRPath expressions. This runs 1 + N psychiatric discharges (bench_intake's ADT^A03 messages)
through an in-process intake on a scratch SQLite database, in a child process, and takes every
version they wrote; then it times ``extract()`` over those versions with the compiled getters
(``search/compiled.py``) and with fhirpathpy alone, in this one run, and checks both give the
same rows. It also gives the intake's CPU per discharge (after the first, a warm-up) with the
getters and, in a second child, with every expression on fhirpathpy as before.

    python bench/bench_extract.py
    python bench/bench_extract.py --discharges 20
    python bench/bench_extract.py --discharges 4 --ndjson tests/data/fhir/gateway-discharges/versions.ndjson
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench._harness import ROOT  # noqa: E402

_VERSIONS = "SELECT res_type, res_id, version_id, content FROM resource_versions"


def discharge_resources(discharges: int, *, fhirpath_only: bool = False) -> dict[str, Any]:
    """Every resource version ``discharges`` discharges wrote (``docs``) and the intake's CPU per
    discharge (``cpu_ms``), in a child process: the intake installs its rules process-wide.
    ``fhirpath_only`` runs the intake with every expression on fhirpathpy, as before."""
    args = [sys.executable, os.path.abspath(__file__), "--child", str(discharges)]
    done = subprocess.run(
        args + (["--fhirpath-only"] if fhirpath_only else []),
        cwd=ROOT,
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    )
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def _child(discharges: int, fhirpath_only: bool) -> dict[str, Any]:
    from sqlalchemy import text

    from bench.bench_intake import _settings, prepare
    from bench.bench_intake import discharges as messages
    from fhir_gateway.app import install_rules
    from fhir_gateway.search.registry import SearchParam
    from fhir_gateway.services.ingest import Intake
    from fhir_gateway.store.db import Database

    if fhirpath_only:  # the baseline: no expression compiles, as before issue 21
        SearchParam.compiled = lambda self: None  # type: ignore[method-assign]
    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        url = f"sqlite:///{tmp}/extract.db"
        prepare(url)
        settings = _settings(url)
        database = Database(url)
        install_rules(settings, database)
        seeded = _versions(database, text)
        intake = Intake(database, settings)
        batch = messages("bx", discharges + 1)
        _receive(intake, batch[:1])  # warm: templates, models, compiled expressions
        started = time.process_time()
        _receive(intake, batch[1:])
        cpu = time.process_time() - started
        written = [doc for key, doc in _versions(database, text).items() if key not in seeded]
        database.dispose()
    return {"docs": written, "cpu_ms": 1000 * cpu / discharges}


def _receive(intake: Any, batch: list[bytes]) -> None:
    for message in batch:
        answer = intake.receive_hl7(message, channel="bench")
        if answer.code != "AA":
            raise RuntimeError(f"intake answered {answer.code}: {answer.body[:400]!r}")


def _versions(database: Any, text: Any) -> dict[tuple[str, str, int], dict[str, Any]]:
    with database.engine.connect() as conn:
        rows = conn.execute(text(_VERSIONS)).all()
    return {
        (t, i, v): (json.loads(doc) if isinstance(doc, str | bytes) else doc)
        for t, i, v, doc in rows
    }


def _per_second(fn: Callable[[], object], budget: float) -> float:
    """Calls per second, best of three rounds of about ``budget``/3 seconds each."""
    fn()  # warm: compiles the expressions on both paths
    best = 0.0
    for _ in range(3):
        n, start = 0, time.perf_counter()
        while (elapsed := time.perf_counter() - start) < budget / 3:
            fn()
            n += 1
        best = max(best, n / elapsed)
    return best


def expression_counts() -> dict[str, int]:
    """How many of the registry's indexed expressions compile to getters."""
    from fhir_gateway.search.extract import NOT_INDEXED
    from fhir_gateway.search.registry import get_registry

    registry = get_registry()
    params = [
        p
        for t in registry.types
        for p in registry.for_type(t).values()
        if p.supported and p.type != "composite" and p.code not in NOT_INDEXED
    ]
    return {"expressions": len(params), "compiled": sum(p.compiled() is not None for p in params)}


def run(discharges: int = 6, budget: float = 3.0) -> dict[str, Any]:
    from fhir_gateway.search.extract import extract

    baseline = discharge_resources(discharges, fhirpath_only=True)
    compiled_run = discharge_resources(discharges)
    docs = compiled_run["docs"]
    if any(extract(doc) != extract(doc, compiled=False) for doc in docs):
        raise RuntimeError("compiled extraction gave other rows than fhirpathpy")
    rows = sum(len(r) for doc in docs for r in extract(doc).values())
    compiled = _per_second(lambda: [extract(doc) for doc in docs], budget)
    fhirpath = _per_second(lambda: [extract(doc, compiled=False) for doc in docs], budget)
    return {
        "discharges": discharges,
        "versions_per_discharge": len(docs) / (discharges + 1),
        "index_rows_per_discharge": rows / (discharges + 1),
        **expression_counts(),
        "compiled_ms_per_discharge": 1000 / compiled / (discharges + 1),
        "fhirpathpy_ms_per_discharge": 1000 / fhirpath / (discharges + 1),
        "speedup": compiled / fhirpath,
        "intake_cpu_ms_per_discharge": {
            "compiled": compiled_run["cpu_ms"],
            "fhirpathpy": baseline["cpu_ms"],
            "ratio": baseline["cpu_ms"] / compiled_run["cpu_ms"],
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--discharges", type=int, default=6)
    parser.add_argument("--budget", type=float, default=3.0)
    parser.add_argument("--ndjson", help="write the discharges' resource versions here and stop")
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--fhirpath-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.child, args.fhirpath_only)))
        return
    if args.ndjson:
        docs = discharge_resources(args.discharges - 1)["docs"]  # the warm-up one is written too
        with open(args.ndjson, "w") as fh:
            fh.writelines(json.dumps(doc) + "\n" for doc in docs)
        return
    for key, value in run(args.discharges, args.budget).items():
        print(f"{key:<28} {value:.2f}" if isinstance(value, float) else f"{key:<28} {value}")


if __name__ == "__main__":
    main()
