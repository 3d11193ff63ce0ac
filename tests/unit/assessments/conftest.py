"""Pure tests of the measurement rules derive keyed ids: give them a unit of work whose
installation secret is fixed, without a database."""

from __future__ import annotations

from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from fhir_gateway.store.keyed_ids import unit_of_work


@pytest.fixture(autouse=True)
def _keyed_ids() -> Iterator[None]:
    session: Any = SimpleNamespace(info={"fhir_gateway.keyed_ids.secret": b"k" * 32})
    with unit_of_work(session):
        yield
