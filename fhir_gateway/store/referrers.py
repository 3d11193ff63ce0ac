"""Which current resources reference a given one (from the reference search index)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from fhir_gateway.store.tables import idx_reference

__all__ = ["referencing"]


def referencing(session: Session, target_type: str, target_id: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(idx_reference.c.res_type, idx_reference.c.res_id)
        .where(idx_reference.c.target_type == target_type, idx_reference.c.target_id == target_id)
        .distinct()
        .order_by(idx_reference.c.res_type, idx_reference.c.res_id)
    ).all()
    return [(r[0], r[1]) for r in rows]
