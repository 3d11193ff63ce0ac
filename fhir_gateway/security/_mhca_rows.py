"""The row policy's SQL for India's Mental Healthcare Act 2017: a partner sees a patient's MHCA data
only under s23(2) (the rules are ``privacy._mhca_records``'s; this is how the row policy asks them
in SQL, over the search index):

* (b) care and treatment: a partner that owns the referral (the Task rules of ``_policy``); a
  referral labelled ``MHCA2017`` is not offered to the other eligible partners to claim, since
  they do not provide the patient's care (yet);
* (c)–(g): a recorded release in force (``Consent``, status ``active``, category
  ``MHCA_SYSTEM|s23-2-c`` … ``-g``, within its period) that names the partner's organisation
  (``provision.actor``) and the row (``provision.data``). Releases are checked whole when they are
  written (``services.mhca``), so the index holds only complete ones.

(a) the nominated representative is a person, not an organisation: the monitors' family messages
ask ``privacy.release_decision`` directly.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import ColumnElement, DateTime, bindparam, exists, not_, or_

from fhir_gateway import clock
from fhir_gateway.privacy import MHCA, MHCA_SYSTEM
from fhir_gateway.security._label_rows import labelled
from fhir_gateway.store.tables import idx_date, idx_reference, idx_token

__all__ = ["mhca_labelled", "released"]

_RELEASES = ("s23-2-c", "s23-2-e", "s23-2-f", "s23-2-g")


def _db_now() -> Any:
    return clock.to_db(clock.now())


def mhca_labelled(r: Any) -> ColumnElement[bool]:
    return labelled(r, MHCA_SYSTEM, [MHCA["code"]])


def _token(consent: Any, param: str, *codes: str, system: str | None = None) -> ColumnElement[bool]:
    t = idx_token.alias()
    conds = [
        t.c.res_type == "Consent",
        t.c.res_id == consent,
        t.c.param == param,
        t.c.code.in_(codes),
    ]
    if system is not None:
        conds.append(t.c.system == system)
    return exists().where(*conds).correlate_except(t)


def released(r: Any, organization_id: str) -> ColumnElement[bool]:
    """An in-force s23(2)(c)–(g) release names this row for ``Organization/organization_id``."""
    data, actor, period = idx_reference.alias(), idx_reference.alias(), idx_date.alias()
    now = bindparam("now", callable_=_db_now, type_=DateTime(), unique=True)
    out_of_force = (
        exists()
        .where(
            period.c.res_type == "Consent",
            period.c.res_id == data.c.res_id,
            period.c.param == "period",
            or_(period.c.low > now, period.c.high <= now),
        )
        .correlate_except(period)
    )
    return (
        exists()
        .where(
            data.c.res_type == "Consent",
            data.c.param == "data",
            data.c.target_type == r.c.res_type,
            data.c.target_id == r.c.res_id,
            actor.c.res_type == "Consent",
            actor.c.res_id == data.c.res_id,
            actor.c.param == "actor",
            actor.c.target_type == "Organization",
            actor.c.target_id == organization_id,
            _token(data.c.res_id, "status", "active"),
            _token(data.c.res_id, "category", *_RELEASES, system=MHCA_SYSTEM),
            not_(out_of_force),
        )
        .correlate_except(data, actor)
    )
