"""A started process keeps its start-up objects out of the collector's full passes."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from fhir_gateway.app import create_app
from fhir_gateway.observability.heap import freeze_start_up_heap
from fhir_gateway.settings import Settings


@pytest.fixture
def unfrozen() -> Iterator[None]:
    gc.unfreeze()
    yield
    gc.unfreeze()  # the rest of the run collects as before


def test_a_started_app_has_frozen_its_start_up_heap(unfrozen: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/gw.db", gc_freeze_at_start=True)
    app = create_app(settings)
    assert gc.get_freeze_count() == 0
    with TestClient(app) as client:  # the lifespan has run: started
        assert gc.get_freeze_count() > 10_000  # the imported modules and models at least
        assert client.get("/metadata").status_code == 200


def test_freezing_can_be_turned_off(unfrozen: None, tmp_path) -> None:  # type: ignore[no-untyped-def]
    settings = Settings(database_url=f"sqlite:///{tmp_path}/gw.db", gc_freeze_at_start=False)
    with TestClient(create_app(settings)):
        assert gc.get_freeze_count() == 0
    assert freeze_start_up_heap(False) == 0


def test_garbage_left_by_start_up_is_collected_not_frozen(unfrozen: None) -> None:
    class Node:
        pass

    cycle = Node()
    cycle.me = cycle  # type: ignore[attr-defined]
    left = weakref.ref(cycle)
    del cycle  # unreachable, but only the collector frees a cycle
    assert left() is not None
    assert freeze_start_up_heap(True) > 0
    assert left() is None
