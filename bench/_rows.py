"""The rows a benchmark reports for the README and issue 21's targets: each figure with its unit,
the baseline it is compared with in the same run, the ratio, and the target it must meet.

A row is a plain dict (it goes to JSON as is)::

    {"measure": "read by id, auth + audit on", "value": 1265.0, "unit": "/s",
     "baseline": 1920.0, "baseline_is": "bare FastAPI, same bytes", "ratio": 0.66,
     "target": {"of": "ratio", "op": ">=", "limit": 0.8}, "met": false}

``target.of`` says which number the target is about (the value or the ratio); rows without a
target have ``target`` and ``met`` null. A target that does not apply to this run (a PostgreSQL
target measured on SQLite) is kept, with ``met`` null and ``why`` saying so.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
from typing import Any

from bench._harness import ROOT

__all__ = ["RESULTS", "Row", "row", "run_context", "write_results"]

Row = dict[str, Any]
RESULTS = os.path.join(ROOT, "bench", "results")
_OPS = {"<=": float.__le__, ">=": float.__ge__}


def row(
    measure: str,
    value: float | None,
    unit: str,
    *,
    baseline: float | None = None,
    baseline_is: str | None = None,
    ratio: float | None = None,
    target: tuple[str, str, float] | None = None,
    applies: bool = True,
    why: str | None = None,
) -> Row:
    """One figure. ``ratio`` defaults to value / baseline; ``target`` is (of, op, limit), e.g.
    ("value", "<=", 65) or ("ratio", ">=", 0.8); ``applies`` false keeps the target unjudged."""
    if ratio is None and value is not None and baseline:
        ratio = value / baseline
    out: Row = {
        "measure": measure,
        "value": value,
        "unit": unit,
        "baseline": baseline,
        "baseline_is": baseline_is,
        "ratio": ratio,
        "target": None,
        "met": None,
    }
    if target is not None:
        of, op, limit = target
        out["target"] = {"of": of, "op": op, "limit": limit}
        judged = value if of == "value" else ratio
        if applies and judged is not None:
            out["met"] = _OPS[op](float(judged), float(limit))
        elif why:
            out["why"] = why
    return out


def run_context() -> dict[str, Any]:
    """When, where and on which commit a run was made: the README says it beside the figures."""
    commit = _git("rev-parse", "--short", "HEAD")
    if commit and _git("status", "--porcelain", "--untracked-files=no"):
        commit += " with uncommitted changes"
    return {
        "measured_at": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "commit": commit,
        "cpus": os.cpu_count(),
        "load_average": round(os.getloadavg()[0], 1),
    }


def _git(*args: str) -> str | None:
    try:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        return None
    return done.stdout.strip()


def write_results(
    name: str,
    figures: dict[str, Any],
    path: str | None = None,
    context: dict[str, Any] | None = None,
) -> str:
    """Write one benchmark's figures with the run's ``context`` (taken when it started; now if
    not given) to ``path``, by default ``bench/results/<name>.json``, where ``bench/readme.py``
    reads them. Returns the path."""
    path = path or os.path.join(RESULTS, f"{name}.json")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    record = {"bench": name, "context": context or run_context(), **figures}
    with open(path, "w") as fh:
        json.dump(record, fh, indent=2)
    return path
