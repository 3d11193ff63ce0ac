"""A messaging provider's webhook (SMS, WhatsApp, …): one small JSON POST over httpx. The
provider the deployment chooses relays it; ``transport`` is the seam tests use."""

from __future__ import annotations

from dataclasses import dataclass

import httpx

from ._errors import MessageUnavailable

__all__ = ["WebhookAnswer", "post_message"]


@dataclass(frozen=True, slots=True)
class WebhookAnswer:
    status: int
    text: str  # the start of the provider's answer, for the attempt log
    retry_after: str | None


def post_message(
    url: str,
    body: bytes,
    *,
    headers: dict[str, str],
    timeout: float,
    transport: httpx.BaseTransport | None = None,
) -> WebhookAnswer:
    """POST ``body`` (JSON) to ``url``; any HTTP answer is returned, no answer raises."""
    try:
        with httpx.Client(transport=transport, timeout=timeout, follow_redirects=False) as client:
            response = client.post(
                url, content=body, headers={**headers, "Content-Type": "application/json"}
            )
    except httpx.TimeoutException as exc:
        raise MessageUnavailable(f"POST {url}: timed out after {timeout:g} s") from exc
    except httpx.TransportError as exc:
        raise MessageUnavailable(f"POST {url}: {exc.__class__.__name__}") from exc
    return WebhookAnswer(
        response.status_code, response.text[:200], response.headers.get("retry-after")
    )
