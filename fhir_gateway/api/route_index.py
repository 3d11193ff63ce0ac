"""Route matching by the path's shape: an included router is asked to match a request only when
one of its routes could.

FastAPI asks each included router in turn, and each router each of its routes, with bookkeeping
around every attempt (a few µs a route). A read by id (``/{res_type}/{res_id}``) is matched after
some seventy routes, the web pages' among them, and spent about a quarter of its CPU there.

A route's shape is its first segment when that is literal (``/web/…``, ``/Patient/…``) and its
number of segments when no parameter may hold a ``/`` (``{path:path}`` may): a route matches only
paths of its shape, so a router none of whose shapes fits the path is passed over at once. The
order of the routes, and so which one answers, is unchanged.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.routing import _EffectiveRouteContext, _IncludedRouter
from starlette._utils import get_route_path
from starlette.convertors import (
    FloatConvertor,
    IntegerConvertor,
    StringConvertor,
    UUIDConvertor,
)
from starlette.routing import Match
from starlette.types import Scope

__all__ = ["index_routes", "shape_of"]

Shape = tuple[str | None, int | None]  # (first segment, segments); None: any
_NO_SLASH = (StringConvertor, IntegerConvertor, FloatConvertor, UUIDConvertor)
_ANY: Shape = (None, None)


def shape_of(path: str) -> tuple[str, int]:
    """``/Patient/1`` → ``("Patient", 2)``; ``/`` → ``("", 1)``."""
    return path[1:].split("/", 1)[0], path.count("/")


def _route_shape(route: _EffectiveRouteContext) -> Shape:
    """The shape of every path ``route`` matches; ``_ANY`` when it cannot be told (a host route)."""
    matcher: Any = route.starlette_route if route.starlette_route is not None else route
    path_format = getattr(matcher, "path_format", None) or route.path_format
    if not path_format or not path_format.startswith("/"):
        return _ANY
    first, count = shape_of(path_format)
    convertors = (getattr(matcher, "param_convertors", None) or route.param_convertors).values()
    slashless = all(isinstance(c, _NO_SLASH) for c in convertors)
    return (None if "{" in first else first), (count if slashless else None)


class _FirstSegmentRouter(_IncludedRouter):
    """An included router that answers "no match" at once for a path of a shape none of its
    routes has; otherwise it matches as FastAPI's own does."""

    _shapes: frozenset[Shape] = frozenset()
    _shapes_version: int | None = None
    _nested = True  # routers included in this one: their changes are counted by a longer walk

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if not self._may_match(get_route_path(scope)):
            return Match.NONE, {}
        return super().matches(scope)

    def _may_match(self, path: str) -> bool:
        router = self.original_router
        version = router._get_routes_version() if self._nested else router._routes_version
        if version != self._shapes_version:  # routes added to the router since: look again
            self._shapes = frozenset(map(_route_shape, self.effective_route_contexts()))
            self._nested = any(isinstance(r, _IncludedRouter) for r in router.routes)
            self._shapes_version = router._get_routes_version()
        shapes = self._shapes
        first, count = shape_of(path)
        return (
            (first, count) in shapes
            or (None, count) in shapes
            or (first, None) in shapes
            or _ANY in shapes
        )


def index_routes(app: FastAPI) -> bool:
    """Give each router included in ``app`` so far the check of the path's shape (call it once every
    router is included; a router included later is matched as before). This leans on FastAPI's
    private routing classes: if what it uses is not there (another FastAPI), the routes stay as
    they were, matched as FastAPI does, and it returns False."""
    routes = app.router.routes
    before = list(routes)
    try:
        for i, route in enumerate(routes):
            if type(route) is _IncludedRouter:
                routes[i] = indexed = _FirstSegmentRouter(
                    original_router=route.original_router, include_context=route.include_context
                )
                indexed._may_match("/")  # what it reads of the router is there, or it fails now
    except (AttributeError, TypeError):
        routes[:] = before
        return False
    return True
