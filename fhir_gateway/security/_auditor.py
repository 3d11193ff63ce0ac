"""The audit writer: each event is one ``audit_log`` row, committed before its answer is sent.

A read's row is committed before the response starts (by the route on its worker thread, or by the
gate when the response starts), so a crash never loses the record of a disclosure; there is no
queue left for a crash to empty. One prebuilt INSERT in a transaction of its own; on SQLite that
takes the write lock for a few microseconds (``_audit_rows.RowWriter``). A write's row is inserted in the write's own
transaction: the change and its record commit together or not at all (a refused or failed write
is then recorded as such by the gate).
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway.context import Caller
from fhir_gateway.security import _audit_rows
from fhir_gateway.store.db import Database

__all__ = ["Auditor"]

log = logging.getLogger("fhir_gateway.audit")


class Auditor:
    def __init__(self, database: Database, *, enabled: bool = True) -> None:
        self.database = database
        self.enabled = enabled
        self._writer = _audit_rows.RowWriter(database.engine)

    def record_request(
        self,
        *,
        method: str,
        path: str,
        query: str,
        status: int,
        caller: Caller | None,
        address: str | None,
        session: Session | None = None,
        wait: bool = True,
    ) -> bool:
        """The request's row: in ``session``'s transaction (a write's: it commits with it), or
        in one of its own, committed before this returns. Without ``wait``, False (nothing
        stored) rather than wait for SQLite's write lock: for a caller on the event loop."""
        if not self.enabled:
            return True
        row = _audit_rows.request_row(
            method=method, path=path, query=query, status=status, caller=caller, address=address
        )
        if session is not None:
            _audit_rows.write(session, [row])
            return True
        return self._store(row, wait)

    def record_token(
        self, *, client_id: str | None, caller: Caller | None, status: int, address: str | None
    ) -> None:
        if self.enabled:
            self._store(
                _audit_rows.token_row(
                    client_id=client_id, caller=caller, status=status, address=address
                )
            )

    def flush(self, timeout: float = 30.0) -> None:
        """Nothing waits: every event is stored when it happens (kept for callers of old)."""

    def close(self) -> None:
        """Close the writer's own connection (SQLite)."""
        self._writer.close()

    def _store(self, row: dict[str, Any], wait: bool = True) -> bool:
        try:
            return self._writer.insert(row, wait=wait)
        except Exception:  # the trail must not take the server down; say so loudly
            log.exception("could not store an audit event")
            return True
