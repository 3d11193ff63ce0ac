"""Values worth keeping for one transaction only, and which resource types it has written.

Data built from stored resources (templates, the partner directory) is checked against the
database once per transaction rather than on every use; the store notes each type it writes so
such a memo knows when the transaction itself changed what it was built from. Both are dropped
when the transaction (or a savepoint) ends, a rollback may undo the writes they saw: ``Database``
listens for that on its own sessions (no listener on every Session in the process).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy.orm import Session, SessionTransaction

__all__ = [
    "memo",
    "note_written",
    "writes_to",
    "note_minted",
    "unreferenced",
    "forget",
    "savepoints",
    "forget_noted",
]

_MEMO = "fhir_gateway.transaction_memo"
_WRITTEN = "fhir_gateway.types_written"
_MINTED = "fhir_gateway.minted"


def memo(session: Session) -> dict[Any, Any]:
    """A dict that lives as long as the session's current transaction."""
    found: dict[Any, Any] = session.info.setdefault(_MEMO, {})
    return found


def note_written(session: Session, res_types: Iterable[str]) -> None:
    """The transaction has written a resource of each of ``res_types``."""
    written: dict[str, int] = session.info.setdefault(_WRITTEN, {})
    for res_type in res_types:
        written[res_type] = written.get(res_type, 0) + 1


def writes_to(session: Session, res_types: Iterable[str]) -> int:
    """How many writes of ``res_types`` the transaction has noted: grows with each one."""
    written: dict[str, int] = session.info.get(_WRITTEN, {})
    return sum(written.get(res_type, 0) for res_type in res_types)


def note_minted(session: Session, reference: str) -> None:
    """The transaction has made up the id of ``reference`` (``Type/id``, a random uuid): no
    resource outside it can point at that resource."""
    minted: set[str] = memo(session).setdefault(_MINTED, set())
    minted.add(reference)


def unreferenced(session: Session, reference: str, res_types: Iterable[str]) -> bool:
    """True when no resource of ``res_types`` can point at ``reference``: its id was minted in this
    transaction, which has written none of those types since (a write of one may point at it)."""
    minted: set[str] = memo(session).get(_MINTED, set())
    return reference in minted and writes_to(session, res_types) == 0


def forget(session: Session, _transaction: SessionTransaction) -> None:
    """The transaction (or a savepoint) ended: listened for by every session ``Database`` opens."""
    session.info.pop(_MEMO, None)
    session.info.pop(_WRITTEN, None)


def savepoints(session: Session) -> tuple[Any, ...]:
    """The savepoints the session is inside, innermost first: what is noted for the end of the
    transaction is tagged with them, so that a savepoint's rollback drops what was noted in it."""
    out, transaction = [], session.get_nested_transaction()
    while transaction is not None and transaction.nested:
        out.append(transaction)
        transaction = transaction.parent
    return tuple(out)


def forget_noted(session: Session, key: str, transaction: Any) -> None:
    """A rollback: of what was noted for the end of the transaction under ``session.info[key]``
    (items tagged with their ``savepoints``), a savepoint's takes its own, the transaction's all."""
    noted = session.info.get(key)
    if noted and transaction.nested:
        session.info[key] = [n for n in noted if transaction not in n.savepoints]
    elif noted:
        session.info.pop(key, None)
