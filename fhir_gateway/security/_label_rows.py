"""The row policy's SQL test of a row's security labels, over the search index (``_security``)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import ColumnElement, exists

from fhir_gateway.store.tables import idx_token

__all__ = ["labelled"]


def labelled(r: Any, system: str, codes: Iterable[str]) -> ColumnElement[bool]:
    """The row carries a security label of ``system`` with one of ``codes`` (the search index)."""
    t = idx_token.alias()
    return (
        exists()
        .where(
            t.c.res_type == r.c.res_type,
            t.c.res_id == r.c.res_id,
            t.c.param == "_security",
            t.c.system == system,
            t.c.code.in_(sorted(codes)),
        )
        .correlate_except(t)
    )
