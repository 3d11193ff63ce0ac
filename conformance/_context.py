"""The state one kit run shares between checks: the client, the server's claims, a run id that
makes every identifier unique (so runs can share a server), and what to delete at the end."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import httpx

from conformance._capability import Claims
from conformance._client import FhirClient, body_of
from conformance._registry import CheckFailed, CheckSkipped

__all__ = ["Context", "TAG_SYSTEM", "match_ids", "included"]

TAG_SYSTEM = "urn:fhir-conformance-kit:run"


def _describe(response: httpx.Response) -> str:
    body = body_of(response)
    detail = ""
    if isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome":
        texts = [
            i.get("diagnostics") or (i.get("details") or {}).get("text", "")
            for i in body.get("issue", [])
        ]
        detail = f" ({'; '.join(t for t in texts if t)[:300]})"
    elif response.content and body is None:
        detail = f" (non-JSON body: {response.text[:120]!r})"
    return f"{response.request.method} {response.request.url} → {response.status_code}{detail}"


class Context:
    def __init__(self, client: FhirClient, claims: Claims, *, race_size: int = 20) -> None:
        self.client = client
        self.claims = claims
        self.race_size = race_size
        self.run_uuid = str(uuid.uuid4())
        self.run_id = self.run_uuid.replace("-", "")[:12]
        self.identifier_system = f"urn:uuid:{self.run_uuid}"
        self._counter = 0
        self._lock = threading.Lock()
        self._key_locks: dict[str, threading.Lock] = {}
        self._created: list[str] = []
        self._cache: dict[str, Any] = {}
        self._local = threading.local()  # checks run in parallel threads; sub-cases are per check

    # -- unique data ---------------------------------------------------------------------------

    def unique(self, label: str) -> str:
        with self._lock:
            self._counter += 1
            return f"{label}-{self.run_id}-{self._counter}"

    def identifier(self, label: str) -> dict[str, str]:
        return {"system": self.identifier_system, "value": self.unique(label)}

    @property
    def tag(self) -> dict[str, str]:
        return {"system": TAG_SYSTEM, "code": self.run_id}

    def stamp(self, resource: dict[str, Any]) -> dict[str, Any]:
        """A copy of ``resource`` carrying this run's tag (so a shared server's data stays apart)."""
        stamped = dict(resource)
        meta = dict(stamped.get("meta") or {})
        meta["tag"] = [*meta.get("tag", []), self.tag]
        stamped["meta"] = meta
        return stamped

    # -- claims --------------------------------------------------------------------------------

    def require(self, res_type: str, *interactions: str) -> None:
        for interaction in interactions:
            if not self.claims.has(res_type, interaction):
                raise CheckSkipped(f"the server does not claim {interaction} on {res_type}")

    def require_param(self, res_type: str, *names: str) -> None:
        for name in names:
            if self.claims.param(res_type, name) is None:
                raise CheckSkipped(
                    f"the server does not claim the search parameter {res_type}.{name}"
                )

    def require_system(self, interaction: str) -> None:
        if interaction not in self.claims.system_interactions:
            raise CheckSkipped(f"the server does not claim the system interaction {interaction}")

    # -- sub-cases: one check, every failure ---------------------------------------------------

    @contextmanager
    def collecting(self) -> Iterator[list[str]]:
        """While a check runs (on this thread), failed sub-cases are gathered here instead of
        ending it; the runner reports them all."""
        failures: list[str] = []
        self._local.failures = failures
        try:
            yield failures
        finally:
            self._local.failures = None

    @contextmanager
    def subcase(self, label: str = "") -> Iterator[None]:
        """One independent case of a check: its failure is recorded and the check goes on (outside
        ``collecting``, it fails the check as before)."""
        failures = getattr(self._local, "failures", None)
        try:
            yield
        except CheckFailed as exc:
            if failures is None:
                raise
            failures.append(
                f"{label}: {exc}" if label and not str(exc).startswith(label) else str(exc)
            )

    # -- judging -------------------------------------------------------------------------------

    @staticmethod
    def expect(condition: object, message: str) -> None:
        if not condition:
            raise CheckFailed(message)

    def expect_status(self, response: httpx.Response, *statuses: int, what: str = "") -> Any:
        """The body of ``response`` if its status is one of ``statuses``; else the check fails."""
        if response.status_code not in statuses:
            wanted = " or ".join(str(s) for s in statuses)
            raise CheckFailed(
                f"{what + ': ' if what else ''}expected {wanted}, got {_describe(response)}"
            )
        return body_of(response)

    def expect_outcome(
        self, response: httpx.Response, *statuses: int, what: str = ""
    ) -> dict[str, Any]:
        """The status is one of ``statuses`` and the body an OperationOutcome with a coded issue."""
        body = self.expect_status(response, *statuses, what=what)
        self.expect(
            isinstance(body, Mapping) and body.get("resourceType") == "OperationOutcome",
            f"{what}: {_describe(response)} has no OperationOutcome body",
        )
        issues = body.get("issue") or []
        self.expect(
            issues and all(i.get("severity") and i.get("code") for i in issues),
            f"{what}: the OperationOutcome's issues need severity and code: {issues}",
        )
        return body  # type: ignore[no-any-return]

    # -- writing, with cleanup -----------------------------------------------------------------

    def track(self, res_type: str, res_id: str) -> None:
        with self._lock:
            self._created.append(f"{res_type}/{res_id}")

    def create(
        self, resource: dict[str, Any], *, headers: dict[str, str] | None = None, what: str = ""
    ) -> dict[str, Any]:
        """POST a stamped copy of ``resource``; the created resource (201) is returned and tracked."""
        res_type = resource["resourceType"]
        response = self.client.post(res_type, self.stamp(resource), headers=headers)
        body = self.expect_status(response, 201, what=what or f"create {res_type}")
        self.expect(
            isinstance(body, Mapping) and body.get("id"),
            f"create {res_type}: the 201 has no resource with an id (send Prefer: return=representation)",
        )
        self.track(res_type, body["id"])
        return body  # type: ignore[no-any-return]

    def cleanup(self) -> list[str]:
        """Delete everything this run created (newest first); the references that would not go."""
        failed = []
        for reference in reversed(self._created):
            try:
                response = self.client.delete(reference)
            except httpx.HTTPError:
                failed.append(reference)
                continue
            if response.status_code not in (200, 202, 204, 404, 410):
                failed.append(reference)
        self._created.clear()
        return failed

    # -- searching -----------------------------------------------------------------------------

    def search(
        self, path: str, params: Iterable[tuple[str, str]] | Mapping[str, str], *, what: str = ""
    ) -> dict[str, Any]:
        response = self.client.get(
            path, params=list(params.items()) if isinstance(params, Mapping) else list(params)
        )
        body = self.expect_status(response, 200, what=what or f"search {path}")
        self.expect(
            isinstance(body, Mapping)
            and body.get("resourceType") == "Bundle"
            and body.get("type") == "searchset",
            f"{_describe(response)}: expected a searchset Bundle",
        )
        return body  # type: ignore[no-any-return]

    def cached(self, key: str, build: Callable[[], Any]) -> Any:
        """Data several checks share (built once per run; a failure to build fails each user)."""
        with self._lock:
            key_lock = self._key_locks.setdefault(key, threading.Lock())
        with key_lock:  # one builder per key; checks in other threads wait only for the same key
            if key not in self._cache:
                try:
                    self._cache[key] = build()
                except (CheckFailed, CheckSkipped) as exc:
                    self._cache[key] = exc
        value = self._cache[key]
        if isinstance(value, (CheckFailed, CheckSkipped)):
            raise type(value)(f"shared data '{key}' could not be built: {value}")
        return value


def match_ids(bundle: Mapping[str, Any], res_type: str | None = None) -> list[str]:
    """Ids of the ``match`` entries of a searchset (entries without search.mode count as matches;
    a resource without an id has none to compare, so it is left out)."""
    ids: list[str] = []
    for entry in bundle.get("entry") or []:
        resource = entry.get("resource") or {}
        mode = (entry.get("search") or {}).get("mode", "match")
        rid = resource.get("id")
        if mode == "match" and isinstance(rid, str):
            if res_type is None or resource.get("resourceType") == res_type:
                ids.append(rid)
    return ids


def included(bundle: Mapping[str, Any]) -> set[str]:
    """``Type/id`` of the ``include`` entries of a searchset."""
    found = set()
    for entry in bundle.get("entry") or []:
        if (entry.get("search") or {}).get("mode") == "include":
            resource = entry.get("resource") or {}
            found.add(f"{resource.get('resourceType')}/{resource.get('id')}")
    return found
