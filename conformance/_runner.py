"""Run the kit against a base URL: fetch the CapabilityStatement, run every selected check, clean up."""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Iterable, Iterator

import httpx

from conformance._capability import Claims, parse_claims
from conformance._client import FhirClient, body_of
from conformance._context import Context
from conformance._registry import Check, CheckFailed, CheckSkipped, registered_checks, registered_families
from conformance._report import ERROR, FAIL, PASS, SKIP, WARN, CheckResult, Report

__all__ = ["run_kit", "list_checks"]


def _selected(check_id: str, select: Iterable[str] | None, exclude: Iterable[str] | None) -> bool:
    def hit(patterns: Iterable[str]) -> bool:
        return any(fnmatch.fnmatch(check_id, p) or check_id.startswith(p.rstrip("*") + ".") for p in patterns)

    if select and not hit(select):
        return False
    return not (exclude and hit(exclude))


def _run_one(check: Check, ctx: Context) -> CheckResult:
    start = time.perf_counter()
    status, message = PASS, ""
    try:
        for res_type, interaction in check.needs:
            ctx.require(res_type, interaction)
        check.run(ctx)
    except CheckSkipped as exc:
        status, message = SKIP, str(exc)
    except CheckFailed as exc:
        status, message = (WARN if check.level == "should" else FAIL), str(exc)
    except httpx.HTTPError as exc:
        status, message = ERROR, f"transport error: {type(exc).__name__}: {exc}"
    except Exception as exc:  # noqa: BLE001 - a kit bug or a wild answer: report it, keep going
        frame = traceback.extract_tb(exc.__traceback__)[-1]
        status, message = ERROR, f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})"
    return CheckResult(check.id, check.title, status, message, time.perf_counter() - start, check.level)


def _fetch_claims(client: FhirClient) -> tuple[Claims | None, str]:
    try:
        response = client.get("metadata")
    except httpx.HTTPError as exc:
        return None, f"GET {client.base_url}/metadata failed: {exc}"
    body = body_of(response)
    if response.status_code != 200 or not isinstance(body, dict) or body.get("resourceType") != "CapabilityStatement":
        return None, f"GET {client.base_url}/metadata → {response.status_code}: no CapabilityStatement"
    return parse_claims(body), ""


def _all_checks(ctx: Context, select: Iterable[str] | None, exclude: Iterable[str] | None) -> Iterator[Check]:
    for check in registered_checks():
        if _selected(check.id, select, exclude):
            yield check
    for fam in registered_families():  # expanding only builds Check objects; no requests yet
        for check in fam.expand(ctx):
            if _selected(check.id, select, exclude):
                yield check


def run_kit(
    base_url: str,
    *,
    token: str | None = None,
    select: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    timeout: float = 30.0,
    race_size: int = 20,
    transport: httpx.BaseTransport | None = None,
) -> Report:
    """Run the selected checks (glob patterns on check ids, or category names) against ``base_url``."""
    start = time.perf_counter()
    report = Report(base_url=base_url.rstrip("/"))
    client = FhirClient(base_url, token=token, timeout=timeout, transport=transport)
    try:
        claims, problem = _fetch_claims(client)
        if claims is None:
            report.results.append(CheckResult("capability.fetch", "GET /metadata answers a CapabilityStatement", FAIL, problem))
            return report
        ctx = Context(client, claims, race_size=race_size)
        try:
            for check in _all_checks(ctx, select, exclude):
                report.results.append(_run_one(check, ctx))
        finally:
            report.cleanup_failures = ctx.cleanup()
    finally:
        client.close()
        report.seconds = time.perf_counter() - start
    return report


def list_checks() -> list[Check]:
    """The static checks (families add more per server, from its CapabilityStatement)."""
    return registered_checks()
