"""A person who types the server's address into a browser lands on the web pages.

``GET /`` from a browser (it asks for HTML and sends no token) is sent to ``/web``; an API client
(``Accept: application/fhir+json``, a bearer token, ``_format``) gets what it always got.
"""

from __future__ import annotations

from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["BrowserHome"]


def _header(scope: Scope, name: bytes) -> str:
    for key, value in scope.get("headers") or []:
        if key == name:
            return bytes(value).decode("latin-1")
    return ""


def _is_browser(scope: Scope) -> bool:
    accept = _header(scope, b"accept").lower()
    query = bytes(scope.get("query_string") or b"").decode("latin-1")
    return (
        "text/html" in accept
        and "fhir" not in accept
        and not _header(scope, b"authorization")
        and "_format" not in query
    )


class BrowserHome:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["path"] == "/"
            and scope["method"] in ("GET", "HEAD")
            and _is_browser(scope)
        ):
            await send(
                {
                    "type": "http.response.start",
                    "status": 303,
                    "headers": [(b"location", b"/web/"), (b"content-length", b"0")],
                }
            )
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)
