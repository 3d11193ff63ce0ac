"""Which current resources reference a given one (from the reference search index)."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.tables import idx_reference
from fhir_gateway.store.transaction_memo import unreferenced

__all__ = ["referencing", "may_refer"]


def referencing(session: Session, target_type: str, target_id: str) -> list[tuple[str, str]]:
    rows = session.execute(
        select(idx_reference.c.res_type, idx_reference.c.res_id)
        .where(idx_reference.c.target_type == target_type, idx_reference.c.target_id == target_id)
        .distinct()
        .order_by(idx_reference.c.res_type, idx_reference.c.res_id)
    ).all()
    return [(r[0], r[1]) for r in rows]


_PLAIN_REFERENCE = re.compile(r"([A-Z][A-Za-z]+)/([A-Za-z0-9\-.]{1,64})")


def may_refer(session: Session, res_types: Sequence[str], param: str, reference: str) -> bool:
    """False when no current resource of ``res_types`` points at ``reference`` (a plain
    ``Type/id``) through the reference parameter ``param``: a search on it would find nothing.
    True otherwise, also for a reference of another form (the search decides)."""
    plain = _PLAIN_REFERENCE.fullmatch(reference)
    if plain is None:
        return True
    if unreferenced(session, reference, res_types):
        return False  # made in this transaction, and nothing it wrote since may name it
    params = {f"t{n}": t for n, t in enumerate(res_types)}
    params.update(param=param, target_type=plain.group(1), target_id=plain.group(2))
    return _probe(len(res_types)).run(session, params).first() is not None


@functools.lru_cache(maxsize=32)
def _probe(count: int) -> Prebuilt:
    """Built once per number of types: a rule's probe runs on most writes, where building the
    statement cost more than it."""
    return Prebuilt(
        select(idx_reference.c.res_id)
        .where(
            idx_reference.c.res_type.in_([bindparam(f"t{n}") for n in range(count)]),
            idx_reference.c.param == bindparam("param"),
            idx_reference.c.target_type == bindparam("target_type"),
            idx_reference.c.target_id == bindparam("target_id"),
        )
        .limit(1)
    )
