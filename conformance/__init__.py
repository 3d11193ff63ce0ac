"""The conformance kit: black-box FHIR R4 checks against any base URL, the official R4 JSON
schema, and declarative profile rules for what the gateway emits.

    from conformance import run_kit
    report = run_kit("http://127.0.0.1:8080", token=None)
    print(report.table()); report.write_junit("conformance.xml")
"""

from __future__ import annotations

from conformance._registry import Check, CheckFailed, CheckSkipped
from conformance._report import CheckResult, Report
from conformance._runner import KitSession, ServerUnusable, list_checks, run_kit

__all__ = [
    "Check",
    "CheckFailed",
    "CheckResult",
    "CheckSkipped",
    "KitSession",
    "Report",
    "ServerUnusable",
    "list_checks",
    "run_kit",
]
