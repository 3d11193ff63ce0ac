"""The baseline: a bare FastAPI app serving fixed bytes from memory, loaded from a file at start.

``BARE_BODY_FILE`` holds the bytes (the gateway's own answer to the same request);
``BARE_STATUS`` the status (default 200). GET answers at once; POST reads the request body first,
as a server that stores it must. Headers, Authorization included, are received and ignored.
"""

from __future__ import annotations

import os

from fastapi import FastAPI, Request
from fastapi.responses import Response


def create_app() -> FastAPI:
    app = FastAPI()
    with open(os.environ["BARE_BODY_FILE"], "rb") as fh:
        body = fh.read()
    status = int(os.environ.get("BARE_STATUS", "200"))

    @app.get("/_health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/{path:path}")
    def serve(path: str) -> Response:
        return Response(body, status_code=status, media_type="application/fhir+json")

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        await request.body()
        return Response(body, status_code=status, media_type="application/fhir+json")

    return app
