"""Storing audit events in bulk: for a batch, the rows ``repository.create_resource`` writes for
each resource (the current row, version 1, the search index), one executemany per table.

Every request stores an AuditEvent, so it is the most written resource there is, and the writer
shares the server's one interpreter lock with the requests. Through ``create_resource`` an event
cost about 2.8 ms: a few statements of its own, and 2 ms of FHIRPath index extraction. Here the
index rows still come from ``extract``, but once per *shape* of event: events of one interaction,
outcome and client differ only in when (``recorded``, ``meta.lastUpdated``) and about which
resources (``id``, entity references, the query text). Those are replaced by placeholders, the
shape's rows are extracted once, and the real values are put back. Whatever a placeholder cannot
stand for (an odd id, a placeholder inside a folded or clipped value) is extracted in full.
``tests/integration/test_security_audit_store.py`` holds the rows equal to ``create_resource``'s.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections import OrderedDict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
from sqlalchemy import insert
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.fhir.references import Reference
from fhir_gateway.search.extract import IndexRows, extract
from fhir_gateway.search.registry import get_registry
from fhir_gateway.store.tables import INDEX_TABLES, resource_versions, resources

__all__ = ["EventRows", "new_id"]

# Where ``recorded`` sits in a shape: a date within a second of it in the rows came from it (the
# events carry no other date), and moves by as much as ``recorded`` differs from it.
_ANCHOR = datetime(2000, 1, 1, tzinfo=UTC)
_ANCHOR_TEXT = clock.to_instant(_ANCHOR)
_ANCHOR_DB = clock.to_db(_ANCHOR)
# meta.lastUpdated, far from the anchor: not indexed today; should it be, _holes finds a date that
# did not come from ``recorded`` and the event is extracted in full.
_ELSEWHEN = clock.to_instant(_ANCHOR + timedelta(days=1000))
_NEAR = timedelta(seconds=1)
_PLAIN_ID = re.compile(r"[A-Za-z0-9\-.]{1,64}")  # a FHIR id: stored as written, never clipped
_SHAPES = 1024
_MARK = "Audit-Slot-"


class _Irregular(Exception):
    """The shape cannot stand for this event: extract it in full."""


# Where a shape's rows take an event's own values: (kind, row, column, placeholder); a placeholder
# of None moves a date by the event's ``recorded``.
_Holes = list[tuple[str, int, str, str | None]]
_IRREGULAR: tuple[IndexRows, _Holes] = ({}, [])


class EventRows:
    """Writes batches of events; remembers the index rows of the last ``_SHAPES`` shapes.

    Used by the one audit writer thread only, so it holds no lock.
    """

    def __init__(self) -> None:
        self._shapes: OrderedDict[bytes, tuple[IndexRows, _Holes]] = OrderedDict()
        self._params: tuple[Any, ...] = ()

    def store(self, session: Session, events: Iterable[dict[str, Any]]) -> None:
        self._follow_registry()
        current: list[dict[str, Any]] = []
        versions: list[dict[str, Any]] = []
        index: IndexRows = {kind: [] for kind in INDEX_TABLES}
        for event in events:
            res_id, when = new_id(), clock.now()
            doc = _stamp(event, res_id, when)
            row = {
                "res_type": doc["resourceType"],
                "res_id": res_id,
                "version_id": 1,
                "last_updated": clock.to_db(when),
                "deleted": False,
                "content": doc,
            }
            current.append(row)
            versions.append({**row, "method": "POST"})
            for kind, rows in self.index_rows(doc).items():
                for index_row in rows:
                    index_row["res_type"], index_row["res_id"] = row["res_type"], res_id
                index[kind].extend(rows)
        if not current:
            return
        session.execute(insert(resources), current)
        session.execute(insert(resource_versions), versions)
        for kind, rows in index.items():
            if rows:
                session.execute(insert(INDEX_TABLES[kind]), rows)

    def index_rows(self, doc: dict[str, Any]) -> IndexRows:
        """What ``extract(doc)`` gives, from the rows of the doc's shape when it has one."""
        try:
            shape, slots, recorded = _shape(doc)
        except _Irregular:
            return extract(doc)
        key = orjson.dumps(shape, option=orjson.OPT_SORT_KEYS)
        known = self._shapes.get(key)
        if known is None:
            known = self._shapes[key] = _holes(extract(shape), slots)
            while len(self._shapes) > _SHAPES:
                self._shapes.popitem(last=False)
        else:
            self._shapes.move_to_end(key)
        if known is _IRREGULAR:
            return extract(doc)
        rows, holes = known
        filled = {kind: [dict(row) for row in kind_rows] for kind, kind_rows in rows.items()}
        shift = recorded - _ANCHOR_DB
        for kind, i, column, placeholder in holes:
            row = filled[kind][i]
            row[column] = row[column] + shift if placeholder is None else slots[placeholder]
        return filled

    def _follow_registry(self) -> None:
        # A SearchParameter added or removed changes what a shape's rows are: start afresh.
        params = tuple(get_registry().for_type("AuditEvent").values())
        if len(params) != len(self._params) or any(
            a is not b for a, b in zip(params, self._params, strict=True)
        ):
            self._shapes.clear()
            self._params = params


def new_id() -> str:
    """A UUID version 7 (RFC 9562): the millisecond, then random bits. Events stored in the order
    they happened land at the end of each ``(type, id)`` index, not on a random page of it: with
    random ids every event dirtied a page per index, the WAL and its checkpoints grew with the
    store, and the writer spent as long in the kernel as in Python."""
    millis = time.time_ns() // 1_000_000
    rand_a, rand_b = (
        int.from_bytes(os.urandom(2), "big") & 0xFFF,
        int.from_bytes(os.urandom(8), "big") >> 2,
    )
    return str(uuid.UUID(int=(millis << 80) | (0x7 << 76) | (rand_a << 64) | (0b10 << 62) | rand_b))


def _stamp(event: dict[str, Any], res_id: str, when: datetime) -> dict[str, Any]:
    # As create_resource stamps a new resource: server id, version 1, lastUpdated now.
    meta = {**(event.get("meta") or {}), "versionId": "1", "lastUpdated": clock.to_instant(when)}
    return {**event, "id": res_id, "meta": meta}


def _shape(doc: dict[str, Any]) -> tuple[dict[str, Any], dict[str, str | None], datetime]:
    """The doc with its per-event values replaced by placeholders; placeholder → value; recorded."""
    recorded, meta = doc.get("recorded"), doc.get("meta")
    if not isinstance(recorded, str) or not isinstance(meta, dict):
        raise _Irregular
    try:
        when = datetime.fromisoformat(recorded)
    except ValueError:
        raise _Irregular from None
    if (
        when.tzinfo is None or clock.to_instant(when) != recorded
    ):  # not an instant as the clock writes
        raise _Irregular
    slots: dict[str, str | None] = {}
    shape = {
        **doc,
        "id": _slot(slots, doc.get("id")),
        "recorded": _ANCHOR_TEXT,
        "meta": {**meta, "lastUpdated": _ELSEWHEN},
    }
    if "entity" in doc:
        shape["entity"] = [_entity_shape(slots, entity) for entity in doc["entity"]]
    return shape, slots, clock.to_db(when)


def _entity_shape(slots: dict[str, str | None], entity: dict[str, Any]) -> dict[str, Any]:
    shaped = dict(entity)
    reference = (entity.get("what") or {}).get("reference")
    if isinstance(reference, str):
        ref = Reference.parse_relative(reference)
        if ref is None:
            raise _Irregular  # shaped the long way, as any other value it cannot place
        shaped["what"] = {**entity["what"], "reference": f"{ref.type}/{_slot(slots, ref.id)}"}
    if isinstance(entity.get("description"), str):
        shaped["description"] = _slot(slots, entity["description"], plain=False)
    return shaped


def _slot(slots: dict[str, str | None], value: Any, *, plain: bool = True) -> str:
    # Mixed case, so that a placeholder folded into a string or token text no longer matches
    # itself and is caught by _holes. A value that is not plain may not reach the rows at all.
    if not isinstance(value, str) or plain and not _PLAIN_ID.fullmatch(value):
        raise _Irregular  # would be clipped or split differently from its placeholder
    placeholder = f"{_MARK}{len(slots)}"
    slots[placeholder] = value if plain else None
    return placeholder


def _holes(rows: IndexRows, slots: dict[str, str | None]) -> tuple[IndexRows, _Holes]:
    """Where the shape's rows hold a placeholder or ``recorded``; _IRREGULAR when a placeholder
    was transformed (folded, clipped, joined) or a date came from elsewhere."""
    holes: _Holes = []
    for kind, kind_rows in rows.items():
        for i, row in enumerate(kind_rows):
            for column, value in row.items():
                if isinstance(value, str) and value in slots and slots[value] is not None:
                    holes.append((kind, i, column, value))
                elif isinstance(value, str) and _MARK.lower() in value.lower():
                    return _IRREGULAR
                elif isinstance(value, datetime):
                    if not _ANCHOR_DB <= value <= _ANCHOR_DB + _NEAR:
                        return _IRREGULAR
                    holes.append((kind, i, column, None))
    return rows, holes
