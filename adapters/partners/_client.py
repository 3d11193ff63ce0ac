"""An httpx client for one partner's FHIR server (R4 JSON): read, search and transaction.

Transport errors and unusable answers become ``PartnerError``s here, at the boundary; ``transport``
is the seam tests use (``httpx.MockTransport`` or a real loopback server)."""

from __future__ import annotations

from typing import Any

import httpx

from ._errors import PartnerError, PartnerRefused, PartnerUnavailable

__all__ = ["PartnerClient", "FHIR_JSON"]

FHIR_JSON = "application/fhir+json"


class PartnerClient:
    def __init__(
        self,
        base_url: str,
        *,
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            transport=transport,
            timeout=timeout,
            headers={"Accept": FHIR_JSON, **(headers or {})},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> PartnerClient:
        return self

    def __exit__(self, *_: object) -> None:
        self.close()

    def _send(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        try:
            return self._http.request(method, path, **kwargs)
        except httpx.TimeoutException as exc:
            raise PartnerUnavailable(f"{method} {path}: timed out") from exc
        except httpx.TransportError as exc:
            raise PartnerUnavailable(f"{method} {path}: {exc.__class__.__name__}") from exc

    def _json(self, response: httpx.Response, what: str) -> dict[str, Any]:
        status = response.status_code
        if status in (408, 429) or status >= 500:
            raise PartnerUnavailable(f"{what}: HTTP {status}", status=status)
        if status >= 400:
            raise PartnerRefused(f"{what}: HTTP {status}", status=status)
        try:
            body = response.json()
        except ValueError as exc:
            raise PartnerError(f"{what}: the answer is not JSON", status=status) from exc
        if not isinstance(body, dict):
            raise PartnerError(f"{what}: the answer is not a FHIR resource", status=status)
        return body

    def read(self, res_type: str, res_id: str) -> dict[str, Any] | None:
        """The resource, or None when the partner does not have it (404, 410)."""
        response = self._send("GET", f"{res_type}/{res_id}")
        if response.status_code in (404, 410):
            return None
        return self._json(response, f"GET {res_type}/{res_id}")

    def search(self, res_type: str, params: list[tuple[str, str]]) -> list[dict[str, Any]]:
        """Every match, following the ``next`` links."""
        found: list[dict[str, Any]] = []
        bundle = self._json(self._send("GET", res_type, params=params), f"GET {res_type}")
        while True:
            found += [
                e["resource"]
                for e in bundle.get("entry", [])
                if e.get("search", {}).get("mode", "match") == "match" and "resource" in e
            ]
            nxt = next(
                (link["url"] for link in bundle.get("link", []) if link.get("relation") == "next"),
                None,
            )
            if nxt is None:
                return found
            bundle = self._json(self._send("GET", nxt), f"GET {nxt}")

    def transaction(self, bundle: dict[str, Any]) -> dict[str, Any]:
        response = self._send("POST", "", json=bundle, headers={"Content-Type": FHIR_JSON})
        return self._json(response, "POST transaction")
