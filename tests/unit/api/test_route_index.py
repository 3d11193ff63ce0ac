"""The route index (``api.route_index``): every request reaches the route FastAPI's own matching
picks, for a path of every route's shape and for paths near them, and routes added to an
included router after the app was built are still found."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi import APIRouter, FastAPI
from fastapi.routing import _IncludedRouter
from starlette.routing import Match

from fhir_gateway.api.route_index import index_routes

_PARAM = re.compile(r"\{[^}]+\}")


def _scope(path: str, method: str = "GET") -> dict[str, Any]:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


def _picked(app: FastAPI, path: str, *, indexed: bool) -> tuple[int, Match] | None:
    """Which top-level route answers ``path``: by the index, or by FastAPI's own matching."""
    scope = _scope(path)
    for position, route in enumerate(app.router.routes):
        if isinstance(route, _IncludedRouter) and not indexed:
            match, _ = _IncludedRouter.matches(route, scope)
        else:
            match, _ = route.matches(scope)
        if match != Match.NONE:
            return position, match
    return None


def _paths(app: FastAPI) -> set[str]:
    """A path of every route's own shape, and paths one segment shorter, longer or otherwise
    named."""
    formats = {"/", "", "/Patient/1", "/Patient/1/_history/2", "/web", "/web/", "/nowhere/at/all"}
    for route in app.routes:
        formats.add(str(getattr(route, "path", "") or ""))
    paths = set()
    for fmt in formats:
        path = _PARAM.sub("x1", fmt)
        paths |= {path, path + "/", path + "/y", path.rsplit("/", 1)[0], "/other" + path}
    return paths


def test_every_path_reaches_the_route_fastapi_would_pick(app: FastAPI) -> None:
    assert any(type(r).__name__ == "_FirstSegmentRouter" for r in app.router.routes)
    for path in sorted(_paths(app)):
        assert _picked(app, path, indexed=True) == _picked(app, path, indexed=False), path


def test_a_read_by_id_passes_over_the_routers_that_cannot_answer_it(app: FastAPI) -> None:
    scope = _scope("/Patient/1")
    asked = [
        r
        for r in app.router.routes
        if isinstance(r, _IncludedRouter) and r._may_match("/Patient/1")
    ]
    included = [r for r in app.router.routes if isinstance(r, _IncludedRouter)]
    assert 0 < len(asked) < len(included) / 2
    assert any(r.matches(scope)[0] == Match.FULL for r in asked)


@pytest.mark.parametrize("path", ["/late/1", "/late/1/more/2"])
def test_a_route_added_to_an_included_router_afterwards_is_found(path: str) -> None:
    app = FastAPI()
    router = APIRouter()

    @router.get("/early")
    def early() -> None: ...

    app.include_router(router)
    index_routes(app)
    included = next(i for i, r in enumerate(app.router.routes) if isinstance(r, _IncludedRouter))
    assert _picked(app, path, indexed=True) is None

    @router.get("/late/{a}")
    def late() -> None: ...

    @router.get("/late/{a}/more/{b:path}")
    def later() -> None: ...

    assert _picked(app, path, indexed=True) == (included, Match.FULL)


def test_another_fastapi_without_what_the_index_uses_keeps_its_own_matching(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A FastAPI whose private routers changed: the app starts and answers, only unindexed."""

    from fastapi.testclient import TestClient

    from fhir_gateway.api import route_index

    app = FastAPI()
    router = APIRouter()

    @router.get("/Patient/{res_id}")
    def read(res_id: str) -> dict[str, str]:
        return {"id": res_id}

    app.include_router(router)
    before = list(app.router.routes)
    monkeypatch.delattr(_IncludedRouter, "effective_route_contexts")
    assert route_index.index_routes(app) is False
    assert app.router.routes == before
    assert TestClient(app).get("/Patient/7").json() == {"id": "7"}


def test_a_fastapi_without_its_private_routers_starts_unindexed(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    import sys

    from fastapi.testclient import TestClient

    from fhir_gateway.app import _index_routes

    app = FastAPI()

    @app.get("/ping")
    def ping() -> str:
        return "pong"

    monkeypatch.setitem(sys.modules, "fhir_gateway.api.route_index", None)  # import fails
    with caplog.at_level("WARNING", logger="fhir_gateway"):
        _index_routes(app)
    assert "route index unavailable" in caplog.text
    assert TestClient(app).get("/ping").json() == "pong"
