"""Run a costly read in a worker thread and stop it when the client goes away.

A search runs in the database on a worker thread; without this, a client that gives up leaves it
running to the end (four abandoned sorts kept the CPU busy). The request's ASGI ``receive`` says
``http.disconnect`` when the connection closes: the budget is then cancelled, which stops the
statement (a cancel request on PostgreSQL, the progress handler on SQLite).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import TypeVar

from fastapi import Request
from starlette.concurrency import run_in_threadpool

from fhir_gateway.store.budget import Budget

__all__ = ["until_disconnect"]

T = TypeVar("T")


async def until_disconnect(request: Request, budget: Budget, work: Callable[[], T]) -> T:
    """``work()`` on a worker thread; ``budget.cancel()`` if the client leaves meanwhile."""
    running = asyncio.ensure_future(run_in_threadpool(work))
    watching = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({running, watching}, return_when=asyncio.FIRST_COMPLETED)
        if watching.done() and not running.done():
            await run_in_threadpool(budget.cancel)
        return await running
    finally:
        watching.cancel()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass
