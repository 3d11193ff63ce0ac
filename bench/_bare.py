"""The baseline: a bare FastAPI app serving fixed bytes from memory, loaded from a file at start."""

from __future__ import annotations

import os

from fastapi import FastAPI
from fastapi.responses import Response


def create_app() -> FastAPI:
    app = FastAPI()
    with open(os.environ["BARE_BODY_FILE"], "rb") as fh:
        body = fh.read()

    @app.get("/_health")
    def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/{path:path}")
    def serve(path: str) -> Response:
        return Response(body, media_type="application/fhir+json")

    return app
