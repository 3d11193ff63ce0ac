"""The grants table behind the row policy's consent rule.

``consent_grants`` holds what ``privacy.grants_of`` reads out of each Consent (the organisations,
or the class of treating providers, it opens the patient's Part 2 data to, for care coordination,
and when; counselling notes apart), rewritten by a write hook
whenever a Consent is created, updated (e.g. ``status`` → ``inactive`` revokes it) or deleted, in
the same transaction; the row policy compares the bounds with the clock of the moment.
"""

from __future__ import annotations

from sqlalchemy import delete, insert
from sqlalchemy.orm import Session

from fhir_gateway import privacy
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.security import _disclosures
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.security_tables import consent_grants

__all__ = ["refresh_grants"]


def refresh_grants(event: WriteEvent, stored: StoredResource | None) -> None:
    """after_write('Consent'): rewrite the grants of this Consent (deleted or revoked: none)."""
    consent_id = (stored.res_id if stored is not None else None) or (
        event.before.res_id if event.before else None
    )
    if consent_id is None:
        return
    session: Session = event.session
    _disclosures.forget(session)
    session.execute(delete(consent_grants).where(consent_grants.c.consent_id == consent_id))
    if stored is None or stored.deleted:
        return
    rows = [
        {
            "consent_id": consent_id,
            "organization": g.recipient,
            "patient_id": g.patient_id,
            "starts": g.starts,
            "ends": g.ends,
            "notes": g.notes,
        }
        for g in privacy.grants_of({**stored.content, "id": consent_id})
        if g.recipient.startswith("Organization/") or g.recipient == privacy.TREATING_CLASS
    ]
    if rows:
        session.execute(insert(consent_grants), rows)
