"""The audit trail's rows: one compact ``audit_log`` row per event, and the AuditEvent it reads as.

A row keeps the columns the trail is searched by (when, which interaction, outcome, client,
organisation, patient, resource) and in ``detail`` the few values its AuditEvent is rebuilt from
(method, path, query, status, role, address; a disclosure's copies). ``event_of(row)`` builds the
same AuditEvent the gateway once stored as a resource, with the row's id, version 1 and
``lastUpdated`` the time recorded. Rows are only ever inserted: nothing updates or deletes them.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Engine, insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.security._audit import interaction_of, patient_of, request_event, token_event
from fhir_gateway.store.db import sqlite_in_a_file
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.security_tables import audit_log, audit_log_terms

__all__ = [
    "new_id",
    "request_row",
    "token_row",
    "disclosure_row",
    "stored_row",
    "stored_terms",
    "record_stored",
    "event_of",
    "INSERT",
    "RowWriter",
    "write",
]

INSERT = insert(audit_log)  # built once: every request runs it
_BUSY_MS = 30000  # as store.db sets it on every SQLite connection


def new_id() -> str:
    """A UUID version 7 (RFC 9562): the millisecond, then random bits. Rows stored in the order
    they happened land at the end of the primary key's index, not on a random page of it."""
    millis = time.time_ns() // 1_000_000
    rand_a, rand_b = (
        int.from_bytes(os.urandom(2), "big") & 0xFFF,
        int.from_bytes(os.urandom(8), "big") >> 2,
    )
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


def _clip(value: str | None, size: int) -> str | None:
    return value[:size] if value else None


def _who(caller: Caller | None) -> dict[str, Any]:
    if caller is None:
        return {}
    return {"role": caller.role, "org": caller.organization}


def request_row(
    *,
    method: str,
    path: str,
    query: str,
    status: int,
    caller: Caller | None,
    address: str | None,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    what = interaction_of(method, path)
    patient = patient_of(what.target, query)
    entity = what.target if what.target and "/" in what.target else None
    return {
        "id": new_id(),
        "recorded": clock.to_db(recorded or clock.now()),
        "kind": "request",
        "subtype": what.code[:64],
        "action": what.action,
        "outcome": _outcome(status),
        "client_id": _clip(caller.client_id if caller else None, 128),
        "agent": _clip(caller.organization if caller else None, 128),
        "patient": _clip(patient, 128),
        "entity": _clip(entity, 256),
        "detail": {"m": method, "p": path, "q": query, "s": status, "a": address, **_who(caller)},
    }


def token_row(
    *, client_id: str | None, caller: Caller | None, status: int, address: str | None
) -> dict[str, Any]:
    return {
        "id": new_id(),
        "recorded": clock.to_db(clock.now()),
        "kind": "token",
        "subtype": "token-issued" if status < 400 else "token-refused",
        "action": "E",
        "outcome": _outcome(status),
        "client_id": _clip(caller.client_id if caller else client_id, 128),
        "agent": _clip(caller.organization if caller else None, 128),
        "patient": None,
        "entity": None,
        "detail": {"s": status, "a": address, **_who(caller)},
    }


def disclosure_row(items: list[dict[str, Any]], channel: str, when: datetime) -> dict[str, Any]:
    """One recipient's copies of one patient's data under one consent (``_disclosures``)."""
    first = items[0]
    return {
        "id": new_id(),
        "recorded": clock.to_db(when),
        "kind": "disclosure",
        "subtype": "part2-disclosure",
        "action": "R",
        "outcome": "0",
        "client_id": _clip(first.get("client"), 128),
        "agent": _clip(first.get("recipient"), 128),
        "patient": _clip(first.get("patient"), 128),
        "entity": _clip(first.get("consent"), 256),
        "detail": {"items": items, "channel": channel},
    }


def stored_row(res_id: str, doc: dict[str, Any], updated: datetime) -> dict[str, Any]:
    """An AuditEvent stored as a resource (an admin's POST), kept whole, with the columns the
    trail is searched by; its other agents, entities and patients are in ``stored_terms``."""
    refs = _refs(doc, "entity", "what")
    orgs = [r for r in _refs(doc, "agent", "who") if r.startswith("Organization/")]
    agents = _items(doc, "agent")
    subtype = _items(doc, "subtype")
    return {
        "id": res_id,
        "recorded": _when(doc.get("recorded")),
        "kind": "stored",
        "subtype": str(subtype[0].get("code") or "")[:64] if subtype else "",
        "action": str(doc.get("action") or "E")[:1],
        "outcome": str(doc.get("outcome") or "0")[:1],
        "client_id": next((str(a["altId"])[:128] for a in agents if a.get("altId")), None),
        "agent": orgs[0][:128] if orgs else None,
        "patient": next((r[:128] for r in refs if r.startswith("Patient/")), None),
        "entity": next((r[:256] for r in refs if not r.startswith("Patient/")), None),
        "detail": {"event": doc},
        "updated": clock.to_db(updated),
    }


def stored_terms(res_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """Every value a stored AuditEvent is found by that its row's one-value columns miss."""
    meta: dict[str, Any] = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    refs = _refs(doc, "entity", "what")
    terms = {("agent", "", r) for r in _refs(doc, "agent", "who")}
    terms |= {("entity", "", r) for r in refs}
    terms |= {("patient", "", r) for r in refs if r.startswith("Patient/")}
    for name, key in (("_tag", "tag"), ("_security", "security")):
        terms |= {
            (name, str(c.get("system") or "")[:256], str(c.get("code") or ""))
            for c in meta.get(key) or []
            if isinstance(c, dict) and c.get("code")
        }
    terms |= {("_profile", "", str(p)) for p in meta.get("profile") or [] if p}
    return [
        {"id": res_id, "name": name, "system": system, "value": value[:256]}
        for name, system, value in sorted(terms)
    ]


def record_stored(event: WriteEvent, stored: StoredResource | None) -> None:
    """The ``after_write`` rule for AuditEvent: an AuditEvent created through the API (admins
    may) joins the trail as a ``stored`` row with its id, in the same transaction, so that the
    trail's search finds it like any other event."""
    if stored is None or stored.deleted or event.before is not None:
        return  # only created: the trail's rows are never updated or deleted
    doc = {**stored.content, "id": stored.res_id}
    event.session.execute(INSERT, stored_row(stored.res_id, doc, stored.last_updated))
    terms = stored_terms(stored.res_id, doc)
    if terms:
        event.session.execute(insert(audit_log_terms), terms)


def _items(doc: dict[str, Any], key: str) -> list[dict[str, Any]]:
    return [item for item in doc.get(key) or [] if isinstance(item, dict)]


def _refs(doc: dict[str, Any], key: str, field: str) -> list[str]:
    found = (str((item.get(field) or {}).get("reference") or "") for item in _items(doc, key))
    return [ref for ref in found if ref]


def _when(recorded: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(recorded).replace("Z", "+00:00"))
    except ValueError:
        return clock.to_db(clock.now())
    return clock.to_db(when) if when.tzinfo else when


def _outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def _caller(row: Any, detail: dict[str, Any]) -> Caller | None:
    role = detail.get("role")
    if not role:
        return None
    return Caller(client_id=row.client_id or "", role=role, organization=detail.get("org"))


def event_of(row: Any) -> dict[str, Any]:
    """The row as the FHIR AuditEvent it records."""
    detail: dict[str, Any] = row.detail
    recorded = clock.from_db(row.recorded)
    if row.kind == "request":
        event = request_event(
            method=detail["m"],
            path=detail["p"],
            query=detail["q"],
            status=detail["s"],
            caller=_caller(row, detail),
            address=detail.get("a"),
            recorded=recorded,
        )
    elif row.kind == "token":
        event = token_event(
            client_id=row.client_id,
            caller=_caller(row, detail),
            status=detail["s"],
            address=detail.get("a"),
            recorded=recorded,
        )
    elif row.kind == "disclosure":
        from fhir_gateway.security._disclosures import disclosure_event

        event = disclosure_event(detail["items"], detail["channel"], recorded)
    else:  # stored: an AuditEvent kept whole
        event = dict(detail["event"])
    meta = {**(event.get("meta") or {}), "versionId": "1"}
    updated = getattr(row, "updated", None)  # a stored event's own; the others', when recorded
    meta["lastUpdated"] = clock.to_instant(clock.from_db(updated) if updated else recorded)
    return {**event, "id": row.id, "meta": meta}


class RowWriter:
    """Inserts one row in a transaction of its own, committed when ``insert`` returns: the INSERT
    compiled once for the engine's dialect and run on a DBAPI connection, with no SQLAlchemy
    connection or transaction around it (half the CPU of ``engine.begin()``). SQLite: BEGIN
    IMMEDIATE, INSERT, COMMIT; PostgreSQL: the INSERT alone, autocommitted (one round trip).

    A row that must not wait for SQLite's write lock (``wait=False``, from the event loop) goes
    through a connection of the writer's own whose busy timeout is zero: no pool checkout and no
    two PRAGMAs to lower and restore a pooled connection's timeout (together a third of the
    row's CPU). Other rows use a pooled connection, as every other statement does.
    """

    def __init__(self, engine: Engine) -> None:
        dialect = engine.dialect
        compiled = INSERT.compile(dialect=dialect)
        self._engine, self._sql = engine, compiled.string
        self._sqlite = dialect.name == "sqlite"
        self._convert = {
            column.name: column.type.dialect_impl(dialect).bind_processor(dialect)
            for column in audit_log.c
        }
        self._positional = [(name, self._convert[name]) for name in compiled.positiontup or []]
        self._prompt_allowed = sqlite_in_a_file(engine)  # a connection of its own sees the rows
        self._prompt: Any = None  # that connection, detached from the pool once first needed
        self._prompt_lock = threading.Lock()

    def insert(self, row: dict[str, Any], *, wait: bool = True) -> bool:
        """Insert ``row``; False, having done nothing, when ``wait`` is off and SQLite's write
        lock is held by another transaction (the caller then inserts it where it may wait)."""
        if self._sqlite:
            ordered = tuple(
                convert(row.get(name)) if convert is not None else row.get(name)
                for name, convert in self._positional
            )
            if not wait and self._prompt_allowed:
                return self._insert_at_once(ordered)
            pooled = self._engine.raw_connection()
            try:
                return self._sqlite_insert(pooled, ordered, wait)
            finally:
                pooled.close()
        values = {
            name: (convert(row.get(name)) if convert is not None else row.get(name))
            for name, convert in self._convert.items()
        }
        pooled = self._engine.raw_connection()
        try:
            self._autocommitted(pooled.driver_connection, values)
            return True
        finally:
            pooled.close()

    def close(self) -> None:
        """Close the writer's own connection, if it opened one (it opens another if used again)."""
        with self._prompt_lock:
            prompt, self._prompt = self._prompt, None
        if prompt is not None:
            prompt.close()

    def _insert_at_once(self, values: tuple[Any, ...]) -> bool:
        with self._prompt_lock:
            if self._prompt is None:
                self._prompt = self._open_prompt()
            try:
                return _insert_or_refuse(self._prompt.cursor(), self._sql, values, refuse=True)
            except BaseException:
                self._prompt.close()  # in whatever state it is: the next row opens another
                self._prompt = None
                raise

    def _open_prompt(self) -> Any:
        pooled = self._engine.raw_connection()  # set up as every connection is (WAL, sync)
        pooled.detach()  # the writer's own from now on: closing it closes the connection
        cursor = pooled.cursor()
        try:
            cursor.execute("PRAGMA busy_timeout=0")
        finally:
            cursor.close()
        return pooled

    def _sqlite_insert(self, pooled: Any, values: tuple[Any, ...], wait: bool) -> bool:
        cursor = pooled.cursor()
        if wait:
            return _insert_or_refuse(cursor, self._sql, values, refuse=False)
        try:
            cursor.execute("PRAGMA busy_timeout=0")
        except BaseException:
            cursor.close()
            raise
        try:
            return _insert_or_refuse(cursor, self._sql, values, refuse=True, close=False)
        finally:
            try:
                cursor.execute(f"PRAGMA busy_timeout={_BUSY_MS}")
            finally:
                cursor.close()

    def _autocommitted(self, driver: Any, values: dict[str, Any]) -> None:
        driver.autocommit = True
        try:
            driver.execute(self._sql, values)
        finally:
            driver.autocommit = False


def _insert_or_refuse(
    cursor: Any, sql: str, values: tuple[Any, ...], *, refuse: bool, close: bool = True
) -> bool:
    """BEGIN IMMEDIATE, the INSERT, COMMIT. When the write lock cannot be had: with ``refuse``,
    False, having done nothing; else the error."""
    try:
        try:
            cursor.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError:
            if refuse:
                return False  # another transaction writes: not here, not now
            raise
        try:
            cursor.execute(sql, values)
        except BaseException:
            cursor.execute("ROLLBACK")
            raise
        cursor.execute("COMMIT")
        return True
    finally:
        if close:
            cursor.close()


def write(target: Connection | Session, rows: list[dict[str, Any]]) -> None:
    """Insert ``rows`` in the transaction of ``target`` (one statement)."""
    if rows:
        target.execute(INSERT, rows if len(rows) > 1 else rows[0])
