"""A thin FHIR-over-HTTP client for the kit (httpx): FHIR headers, bearer token, JSON helpers.

Deliberately not a FHIR library: the kit must see the server's raw answers (status, headers,
body) to judge them, so nothing here interprets or retries.
"""

from __future__ import annotations

import json
import time
from typing import Any

import httpx

__all__ = ["FHIR_JSON", "FhirClient", "body_of"]

FHIR_JSON = "application/fhir+json"
_RETRIES_429 = 8
_MAX_WAIT = 10.0


def body_of(response: httpx.Response) -> Any:
    """The JSON body, or None when there is none or it is not JSON."""
    if not response.content:
        return None
    try:
        return response.json()
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None


class FhirClient:
    """Requests against one FHIR base URL; paths are relative to it, absolute URLs pass through."""

    def __init__(
        self,
        base_url: str,
        *,
        token: str | None = None,
        timeout: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        headers = {"Accept": FHIR_JSON}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.base_url + "/",
            headers=headers,
            timeout=timeout,
            transport=transport,
            limits=httpx.Limits(max_connections=64, max_keepalive_connections=32),
        )

    def close(self) -> None:
        self._http.close()

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | str | None = None,
        params: Any = None,
        headers: dict[str, str] | None = None,
        content_type: str = FHIR_JSON,
    ) -> httpx.Response:
        all_headers = dict(headers or {})
        if json_body is not None:
            content = json.dumps(json_body)
        if content is not None:
            all_headers.setdefault("Content-Type", content_type)
        url = path if path.startswith(("http://", "https://")) else path.lstrip("/")
        for _ in range(_RETRIES_429):  # a polite client waits out a rate limit instead of failing
            response = self._http.request(
                method, url, content=content, params=params, headers=all_headers
            )
            if response.status_code != 429:
                return response
            time.sleep(_retry_after(response))
        return response

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("POST", path, json_body=body, **kwargs)

    def put(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PUT", path, json_body=body, **kwargs)

    def patch(self, path: str, body: Any = None, **kwargs: Any) -> httpx.Response:
        return self.request("PATCH", path, json_body=body, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(_MAX_WAIT, max(0.05, float(response.headers.get("retry-after", "1"))))
    except ValueError:
        return 1.0
