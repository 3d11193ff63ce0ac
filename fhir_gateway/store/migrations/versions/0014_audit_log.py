"""audit_log: the audit trail as compact append-only rows

Every request, token and Part 2 disclosure was stored as an AuditEvent resource (the current row,
a version and its index rows), by a background writer that a crash could outrun. It is now one row
here, inserted before the answer leaves, and presented as an AuditEvent when read or searched.
AuditEvents stored before stay where they are and are copied here whole (kind ``stored``), so that
the trail and the accounting of disclosures still find them; ``audit_log_terms`` holds what such
an event is also searched by (its every agent, entity and patient, its tags, labels, profiles).

Revision ID: 0014
Revises: 0013
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(JSONB(), "postgresql")
_CHUNK = 1000


def upgrade() -> None:
    table = op.create_table(
        "audit_log",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("recorded", sa.DateTime(timezone=False), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("subtype", sa.String(64), nullable=False),
        sa.Column("action", sa.String(1), nullable=False),
        sa.Column("outcome", sa.String(1), nullable=False),
        sa.Column("client_id", sa.String(128), nullable=True),
        sa.Column("agent", sa.String(128), nullable=True),
        sa.Column("patient", sa.String(128), nullable=True),
        sa.Column("entity", sa.String(256), nullable=True),
        sa.Column("detail", _JSON, nullable=False),
        sa.Column("updated", sa.DateTime(timezone=False), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index("ix_audit_log_recorded", "audit_log", ["recorded"])
    op.create_index("ix_audit_log_patient_recorded", "audit_log", ["patient", "recorded"])
    op.create_index("ix_audit_log_client_recorded", "audit_log", ["client_id", "recorded"])
    terms = op.create_table(
        "audit_log_terms",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("name", sa.String(16), nullable=False),
        sa.Column("system", sa.String(256), nullable=False),
        sa.Column("value", sa.String(256), nullable=False),
    )
    op.create_index("ix_audit_log_terms_name_value", "audit_log_terms", ["name", "value"])
    op.create_index("ix_audit_log_terms_id", "audit_log_terms", ["id"])
    _copy_stored_events(table, terms)


def _copy_stored_events(table: sa.Table, terms: sa.Table) -> None:
    bind = op.get_bind()
    resources = sa.table(
        "resources",
        sa.column("res_type", sa.String),
        sa.column("res_id", sa.String),
        sa.column("deleted", sa.Boolean),
        sa.column("content", _JSON),
        sa.column("last_updated", sa.DateTime(timezone=False)),
    )
    query = (
        sa.select(resources.c.res_id, resources.c.content, resources.c.last_updated)
        .where(resources.c.res_type == "AuditEvent", resources.c.deleted == sa.false())
        .order_by(resources.c.res_id)
    )
    after = ""
    while True:
        rows = bind.execute(query.where(resources.c.res_id > after).limit(_CHUNK)).all()
        if not rows:
            return
        docs = [(res_id, _doc(content), updated) for res_id, content, updated in rows]
        copies = [_row(res_id, doc) | {"updated": updated} for res_id, doc, updated in docs]
        bind.execute(sa.insert(table), copies)
        found = [term for res_id, doc, _ in docs for term in _terms(res_id, doc)]
        if found:
            bind.execute(sa.insert(terms), found)
        after = rows[-1][0]


def _doc(content: Any) -> dict[str, Any]:
    return json.loads(content) if isinstance(content, str | bytes) else dict(content)


def _row(res_id: str, doc: dict[str, Any]) -> dict[str, Any]:
    """The event as it was stored, whole, with the columns the trail is searched by (as
    ``security._audit_rows.stored_row`` makes them; kept here as it was when written)."""
    agents = [a for a in doc.get("agent") or [] if isinstance(a, dict)]
    refs = [
        str((e.get("what") or {}).get("reference") or "")
        for e in doc.get("entity") or []
        if isinstance(e, dict)
    ]
    subtype = [s for s in doc.get("subtype") or [] if isinstance(s, dict)]
    orgs = [
        str((a.get("who") or {}).get("reference") or "")
        for a in agents
        if str((a.get("who") or {}).get("reference") or "").startswith("Organization/")
    ]
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
        "entity": next((r[:256] for r in refs if r and not r.startswith("Patient/")), None),
        "detail": {"event": doc},
    }


def _terms(res_id: str, doc: dict[str, Any]) -> list[dict[str, Any]]:
    """What the event is searched by beyond its row's columns (as
    ``security._audit_rows.stored_terms`` makes them; kept here as it was when written)."""

    def refs(key: str, field: str) -> list[str]:
        items = [i for i in doc.get(key) or [] if isinstance(i, dict)]
        return [r for r in (str((i.get(field) or {}).get("reference") or "") for i in items) if r]

    meta: dict[str, Any] = doc["meta"] if isinstance(doc.get("meta"), dict) else {}
    what = refs("entity", "what")
    found = {("agent", "", r) for r in refs("agent", "who")}
    found |= {("entity", "", r) for r in what}
    found |= {("patient", "", r) for r in what if r.startswith("Patient/")}
    for name, key in (("_tag", "tag"), ("_security", "security")):
        found |= {
            (name, str(c.get("system") or "")[:256], str(c.get("code") or ""))
            for c in meta.get(key) or []
            if isinstance(c, dict) and c.get("code")
        }
    found |= {("_profile", "", str(p)) for p in meta.get("profile") or [] if p}
    return [{"id": res_id, "name": n, "system": s, "value": v[:256]} for n, s, v in sorted(found)]


def _when(recorded: Any) -> datetime:
    try:
        when = datetime.fromisoformat(str(recorded))
    except ValueError:
        return datetime.now(UTC).replace(tzinfo=None)
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


def downgrade() -> None:
    op.drop_index("ix_audit_log_terms_id", table_name="audit_log_terms")
    op.drop_index("ix_audit_log_terms_name_value", table_name="audit_log_terms")
    op.drop_table("audit_log_terms")
    op.drop_index("ix_audit_log_client_recorded", table_name="audit_log")
    op.drop_index("ix_audit_log_patient_recorded", table_name="audit_log")
    op.drop_index("ix_audit_log_recorded", table_name="audit_log")
    op.drop_table("audit_log")
