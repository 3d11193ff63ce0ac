"""Statements prebuilt for the hot paths run in the session's transaction as any other does: their
values and rows are the same, the engine sees and counts them, and a refused write is the same
409 (issue 21: statements prebuilt)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, func, insert, select

from fhir_gateway.errors import Conflict
from fhir_gateway.store.inbox_tables import inbox_keys, inbox_messages
from fhir_gateway.store.prebuilt import Prebuilt
from fhir_gateway.store.statements import counting

_ADD = Prebuilt(
    insert(inbox_messages)
    .values(
        {
            n: bindparam(n)
            for n in ("raw", "channel", "kind", "status", "attempts", "received_at", "warnings")
        }
    )
    .returning(inbox_messages.c.id, inbox_messages.c.received_at, inbox_messages.c.warnings)
)
_READ = Prebuilt(
    select(inbox_messages.c.received_at, inbox_messages.c.warnings, inbox_messages.c.error).where(
        inbox_messages.c.id == bindparam("id"), inbox_messages.c.status == "received"
    )
)
_CLAIM = Prebuilt(
    insert(inbox_keys).values(message_key=bindparam("key"), key_text="k", message_id=1)
)


def _add(session, when: datetime) -> int:  # type: ignore[no-untyped-def]
    values = {
        "raw": b"MSH|^~\\&|",
        "channel": "mllp",
        "kind": "hl7v2",
        "status": "received",
        "attempts": 0,
        "received_at": when.replace(tzinfo=None),
        "warnings": ["unmapped code X", "ü"],
    }
    row = _ADD.run(session, values).one()
    assert (row.received_at, row.warnings) == (when.replace(tzinfo=None), ["unmapped code X", "ü"])
    return int(row.id)


def test_values_and_rows_are_those_of_a_full_execution(database) -> None:  # type: ignore[no-untyped-def]
    when = datetime(2026, 12, 6, 8, 30, 15, 123456, tzinfo=UTC)
    with database.session() as session:
        mid = _add(session, when)
        # a literal of the statement (status = 'received') is bound as SQLAlchemy binds it
        row = _READ.run(session, {"id": mid}).one()
        naive = when.replace(tzinfo=None)  # as the database keeps it (UTC)
        assert (row.received_at, row.warnings, row.error) == (naive, ["unmapped code X", "ü"], None)
        assert _READ.run(session, {"id": mid + 1}).first() is None
    with database.session() as session:  # committed, read back by a full execution
        full = session.execute(
            select(inbox_messages.c.received_at, inbox_messages.c.warnings).where(
                inbox_messages.c.id == mid
            )
        ).one()
        assert tuple(full) == (when.replace(tzinfo=None), ["unmapped code X", "ü"])


def test_the_engine_counts_them(database) -> None:  # type: ignore[no-untyped-def]
    with counting(database.engine) as seen, database.session() as session:
        mid = _add(session, datetime(2026, 1, 1, tzinfo=UTC))
        _READ.run(session, {"id": mid})
    assert seen.by_table["INSERT inbox_messages"] == 1
    assert seen.by_table["SELECT inbox_messages"] == 1


def test_a_refused_write_is_a_conflict_and_undoes_its_transaction(database) -> None:  # type: ignore[no-untyped-def]
    with database.session() as session:
        _CLAIM.run(session, {"key": "a"})
    with pytest.raises(Conflict), database.session() as session:
        _add(session, datetime(2026, 1, 1, tzinfo=UTC))
        _CLAIM.run(session, {"key": "a"})
    with database.session() as session:
        assert session.execute(select(func.count()).select_from(inbox_messages)).scalar() == 0
        assert session.execute(select(func.count()).select_from(inbox_keys)).scalar() == 1


def test_what_a_full_execution_alone_can_do_is_refused_when_compiled(database) -> None:  # type: ignore[no-untyped-def]
    expanding = Prebuilt(
        select(inbox_messages.c.id).where(inbox_messages.c.id.in_(bindparam("ids", expanding=True)))
    )
    with pytest.raises(ValueError, match="expanding"), database.session() as session:
        expanding.run(session, {"ids": [1, 2]})


def test_a_value_left_out_is_refused_not_stored_as_null(database) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(KeyError, match="key"), database.session() as session:
        _CLAIM.run(session, {})
