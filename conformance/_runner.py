"""Run the kit against a base URL: fetch the CapabilityStatement, run every selected check, clean up.

``KitSession`` is the one way checks are run (the CLI through ``run_kit``, the pytest plugin one
item per check); it owns the client, the server's claims and the run's context.
"""

from __future__ import annotations

import fnmatch
import time
import traceback
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor

import httpx

from conformance._capability import Claims, parse_claims
from conformance._client import FhirClient, body_of
from conformance._context import Context
from conformance._registry import (
    Check,
    CheckFailed,
    CheckSkipped,
    registered_checks,
    registered_families,
)
from conformance._report import ERROR, FAIL, PASS, SKIP, WARN, CheckResult, Report

__all__ = ["KitSession", "ServerUnusable", "run_kit", "list_checks"]


class ServerUnusable(Exception):
    """The base URL does not answer a CapabilityStatement, so nothing can be checked."""


def _hit(check_id: str, patterns: Iterable[str]) -> bool:
    return any(
        fnmatch.fnmatch(check_id, p) or check_id.startswith(p.rstrip(".*") + ".") for p in patterns
    )


def _fetch_claims(client: FhirClient) -> Claims:
    try:
        response = client.get("metadata")
    except httpx.HTTPError as exc:
        raise ServerUnusable(f"GET {client.base_url}/metadata failed: {exc}") from exc
    body = body_of(response)
    if (
        response.status_code != 200
        or not isinstance(body, dict)
        or body.get("resourceType") != "CapabilityStatement"
    ):
        raise ServerUnusable(
            f"GET {client.base_url}/metadata → {response.status_code}: no CapabilityStatement"
        )
    return parse_claims(body)


class KitSession:
    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        race_size: int = 20,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.client = FhirClient(base_url, token=token, timeout=timeout, transport=transport)
        try:
            self.ctx = Context(self.client, _fetch_claims(self.client), race_size=race_size)
        except ServerUnusable:
            self.client.close()
            raise

    def checks(
        self, select: Iterable[str] | None = None, exclude: Iterable[str] | None = None
    ) -> list[Check]:
        """Static checks plus those built from the server's claims, filtered by glob patterns
        on check ids (a bare category such as ``search`` selects all its checks)."""
        every = registered_checks() + [
            c for fam in registered_families() for c in fam.expand(self.ctx)
        ]
        select, exclude = list(select or ()), list(exclude or ())
        return [
            c
            for c in every
            if (not select or _hit(c.id, select)) and not (exclude and _hit(c.id, exclude))
        ]

    def run(self, check: Check) -> CheckResult:
        start = time.perf_counter()
        status, message = PASS, ""
        failed_cases: list[str] = []
        try:
            for res_type, interaction in check.needs:
                self.ctx.require(res_type, interaction)
            with self.ctx.collecting() as failed_cases:
                check.run(self.ctx)
            if failed_cases:
                raise CheckFailed(_every(failed_cases))
        except CheckSkipped as exc:
            status, message = SKIP, str(exc)
        except CheckFailed as exc:
            status = WARN if check.level == "should" else FAIL
            message = (
                str(exc)
                if not failed_cases or str(exc) == _every(failed_cases)
                else _every([*failed_cases, str(exc)])
            )
        except httpx.HTTPError as exc:
            status, message = ERROR, f"transport error: {type(exc).__name__}: {exc}"
        except Exception as exc:  # noqa: BLE001 - a kit bug or a wild answer: report it, keep going
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            status, message = (
                ERROR,
                f"{type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})",
            )
        return CheckResult(
            check.id, check.title, status, message, time.perf_counter() - start, check.level
        )

    def close(self) -> list[str]:
        """Delete what the run created; the references that would not go."""
        try:
            return self.ctx.cleanup()
        finally:
            self.client.close()


def _every(failures: list[str]) -> str:
    """All failed sub-cases of one check, numbered (not only the first)."""
    if len(failures) == 1:
        return failures[0]
    return f"{len(failures)} sub-cases fail — " + " | ".join(
        f"({n}) {f}" for n, f in enumerate(failures, 1)
    )


def run_kit(
    base_url: str,
    *,
    token: str | None = None,
    select: Iterable[str] | None = None,
    exclude: Iterable[str] | None = None,
    timeout: float = 30.0,
    race_size: int = 20,
    jobs: int = 4,
    transport: httpx.BaseTransport | None = None,
) -> Report:
    """Run the selected checks against ``base_url`` and clean up after them.

    ``jobs`` checks run at a time (each writes its own uniquely named data, so they do not meet);
    results keep the checks' order."""
    start = time.perf_counter()
    report = Report(base_url=base_url.rstrip("/"))
    try:
        kit = KitSession(
            base_url, token=token, timeout=timeout, race_size=race_size, transport=transport
        )
    except ServerUnusable as exc:
        report.results.append(
            CheckResult(
                "capability.fetch", "GET /metadata answers a CapabilityStatement", FAIL, str(exc)
            )
        )
        report.seconds = time.perf_counter() - start
        return report
    try:
        checks = kit.checks(select, exclude)
        with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
            report.results.extend(pool.map(kit.run, checks))
    finally:
        report.cleanup_failures = kit.close()
        report.seconds = time.perf_counter() - start
    return report


def list_checks() -> list[Check]:
    """The static checks (families add more per server, from its CapabilityStatement)."""
    return registered_checks()
