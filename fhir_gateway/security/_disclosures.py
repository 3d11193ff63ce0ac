"""Disclosures of Part 2 data: why each copy may go, and the accounting of every one that went.

* ``basis(session, caller, resource)``: the Consent (``privacy.evaluate_consent``) under which an
  outsider receives ETH/42CFRPart2 data, with the recipient as the privacy module sees it (the
  directory's marks, its treating relationship with the patient); None when no consent permits
  (the row policy then let it through for another reason: a hospital reading back what it sent).
* Each copy served under a consent is noted on the session. Copies read through the API or the
  web pages are accounted for when the session commits; copies queued in the outbox (notifications,
  pushes) travel with their row (``take``) and are accounted for when delivered
  (``account_delivered``), or never, when the consent no longer permits them by the time the row's
  turn comes (``withdrawn_because``): revocation takes effect at once, also for what is queued.
* The accounting (42 CFR 2.24, 2.25): one audit row per recipient, consent and moment, read as an
  AuditEvent (``subtype`` part2-disclosure, DICOM 110106 "Export") with the patient, the
  recipient, the Consent used, the purposes and the resources disclosed;
  ``accounting(session, patient, since)`` lists them, the newest last. Audit rows are never
  pruned; the accounting shows three years.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import literal, select
from sqlalchemy.orm import Session

from fhir_gateway import clock, hooks, privacy
from fhir_gateway.context import Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.security import _audit_rows
from fhir_gateway.store import repository as repo
from fhir_gateway.store.security_tables import audit_log

__all__ = [
    "SUBTYPE",
    "basis",
    "recipient",
    "note",
    "take",
    "forget",
    "withdrawn_because",
    "account_delivered",
    "accounting",
    "accounting_bundle",
    "disclosure_event",
    "install",
]

SUBTYPE_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/audit-subtype"
SUBTYPE = "part2-disclosure"
ACCOUNTING_YEARS = 3
_PENDING = "part2.disclosures"
_BASES = "part2.bases"
_PATIENT_KEYS = ("patient", "subject", "for", "beneficiary")
_EXPORT = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110106",
    "display": "Export",
}


def patient_of(resource: dict[str, Any]) -> str | None:
    """``Patient/ID`` of a resource about one patient (the Patient itself, its subject, …)."""
    if resource.get("resourceType") == "Patient" and resource.get("id"):
        return f"Patient/{resource['id']}"
    for key in _PATIENT_KEYS:
        value = resource.get(key)
        ref = value.get("reference") if isinstance(value, dict) else None
        patient_id = Reference.id_of(ref, "Patient") if isinstance(ref, str) else None
        if patient_id:
            return f"Patient/{patient_id}"
    return None


def recipient(session: Session, organization: str, patient: str) -> privacy.Recipient:
    """The organisation as the privacy module judges a recipient: the directory's marks and its
    treating relationship with the patient (what the row policy's SQL asks, asked once)."""
    from fhir_gateway.security._policy import related

    org_id = Reference.id_of(organization, "Organization")
    if org_id is None:
        return privacy.Recipient(organization)
    stored = repo.read(session, "Organization", org_id)
    treating, hipaa = privacy.recipient_marks(
        stored.content if stored is not None and not stored.deleted else None
    )
    patient_id = patient.removeprefix("Patient/")
    is_related = bool(session.execute(select(related(org_id, literal(patient_id)))).scalar())
    return privacy.Recipient(organization, treating, hipaa, is_related)


def basis(
    session: Session,
    caller: Caller,
    resource: dict[str, Any],
    labels: frozenset[str] | None = None,
) -> privacy.Disclosure | None:
    """The consent this caller receives ``resource`` (or data so ``labels``) under, if any."""
    patient = patient_of(resource)
    if caller.organization is None or patient is None:
        return None
    codes = labels if labels is not None else privacy.label_codes(privacy.labels_of(resource))
    key = (caller.organization, patient, "PSYTHPN" in codes)
    cache: dict[tuple[str, str, bool], privacy.Disclosure | None] = session.info.setdefault(
        _BASES, {}
    )
    if key not in cache:
        who = recipient(session, caller.organization, patient)
        consents = privacy.consents_of(session, patient)
        decision = privacy.evaluate_consent(
            consents, patient=patient, recipient=who, at=clock.now(), labels=codes
        )
        consent = next((c for c in consents if f"Consent/{c.get('id')}" == decision.consent), None)
        cache[key] = privacy.Disclosure(consent, who) if consent is not None else None
    return cache[key]


def forget(session: Session) -> None:
    """A Consent changed in this transaction: judge the next copies afresh."""
    session.info.pop(_BASES, None)


def note(
    session: Session, caller: Caller, resource: dict[str, Any], disclosure: privacy.Disclosure
) -> None:
    """Remember a copy served under ``disclosure`` (accounted for when it is known to have gone)."""
    meta = resource.get("meta") or {}
    version = meta.get("versionId")
    what = f"{resource.get('resourceType')}/{resource.get('id')}"
    session.info.setdefault(_PENDING, []).append(
        {
            "patient": patient_of(resource),
            "recipient": disclosure.recipient.reference,
            "consent": f"Consent/{disclosure.consent.get('id')}",
            "purposes": [
                str(p.get("code"))
                for p in (disclosure.consent.get("provision") or {}).get("purpose") or []
                if isinstance(p, dict) and p.get("code")
            ],
            "labels": sorted(privacy.label_codes(privacy.labels_of(resource))),
            "resource": f"{what}/_history/{version}" if version else what,
            "client": caller.client_id,
        }
    )


def take(session: Session) -> list[dict[str, Any]] | None:
    """The copies noted so far, now travelling with an outbox row (not accounted for at commit)."""
    return session.info.pop(_PENDING, None) or None


# -- the outbox -----------------------------------------------------------------------------------


def withdrawn_because(session: Session, disclosures: list[dict[str, Any]]) -> str | None:
    """Why a queued row may no longer go (a consent revoked or expired since), or None."""
    now = clock.now()
    for item in disclosures:
        patient, org = item.get("patient"), item.get("recipient")
        if not patient or not org:
            return "the disclosure cannot be read"
        decision = privacy.evaluate_consent(
            privacy.consents_of(session, patient),
            patient=patient,
            recipient=recipient(session, org, patient),
            at=now,
            labels=item.get("labels") or (),
        )
        if not decision:
            return f"no consent permits it now: {decision.reason}"
    return None


def account_delivered(session: Session, disclosures: list[dict[str, Any]], channel: str) -> None:
    """A queued row went out: its disclosures enter the accounting, in the caller's transaction."""
    _audit_rows.write(session, _rows(disclosures, channel, clock.now()))


# -- copies served through the API: accounted for at commit ---------------------------------------


def _after_commit(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT released: the transaction goes on
    session.info.pop(_BASES, None)
    pending = session.info.pop(_PENDING, None)
    if not pending:
        return
    bind = session.get_bind()
    engine = getattr(bind, "engine", bind).execution_options(readonly=False)
    with Session(engine) as writer, writer.begin():
        _audit_rows.write(writer, _rows(pending, "api", clock.now()))


def _after_rollback(session: Session) -> None:
    if session.in_nested_transaction():
        return  # a SAVEPOINT: what the transaction served before it still went
    session.info.pop(_BASES, None)
    session.info.pop(_PENDING, None)


def install(rules: hooks.Rules) -> None:
    """Account at the end of each of ``rules``' sessions (reads and writes)."""
    rules.on_session("after_commit", _after_commit)
    rules.on_session("after_rollback", _after_rollback)


# -- the events ----------------------------------------------------------------------------------


def _rows(disclosures: list[dict[str, Any]], channel: str, when: datetime) -> list[dict[str, Any]]:
    groups: dict[tuple[str, str, str, str], list[dict[str, Any]]] = defaultdict(list)
    for item in disclosures:
        key = (item["patient"], item["recipient"], item["consent"], item.get("client") or "")
        groups[key].append(item)
    return [_audit_rows.disclosure_row(items, channel, when) for items in groups.values()]


def _entity(what: str, type_code: str, role: str, description: str | None = None) -> dict[str, Any]:
    entity: dict[str, Any] = {
        "what": {"reference": what},
        "type": {
            "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
            "code": type_code,
        },
        "role": {"system": "http://terminology.hl7.org/CodeSystem/object-role", "code": role},
    }
    if description:
        entity["description"] = description
    return entity


def disclosure_event(items: list[dict[str, Any]], channel: str, when: datetime) -> dict[str, Any]:
    """The AuditEvent of one disclosure row: one recipient's copies under one consent."""
    first = items[0]
    purposes = sorted({p for item in items for p in item.get("purposes") or []}) or ["COC"]
    resources = list(dict.fromkeys(item["resource"] for item in items))
    agents: list[dict[str, Any]] = [
        {
            "type": {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                        "code": "IRCP",
                        "display": "information recipient",
                    }
                ]
            },
            "who": {"reference": first["recipient"]},
            "requestor": False,
        },
        {
            "type": {
                "coding": [
                    {
                        "system": "http://dicom.nema.org/resources/ontology/DCM",
                        "code": "110153",
                        "display": "Source Role ID",
                    }
                ]
            },
            "who": {"display": "fhir-gateway"},
            "requestor": False,
        },
    ]
    if first.get("client"):
        agents[0]["altId"] = first["client"]
    return {
        "resourceType": "AuditEvent",
        "meta": {"security": [dict(privacy.RESTRICTED)]},
        "type": dict(_EXPORT),
        "subtype": [
            {"system": SUBTYPE_SYSTEM, "code": SUBTYPE, "display": "42 CFR Part 2 disclosure"}
        ],
        "action": "R",
        "recorded": clock.to_instant(when),
        "outcome": "0",
        "outcomeDesc": f"disclosed by {channel}",
        "purposeOfEvent": [
            {
                "coding": [
                    {"system": "http://terminology.hl7.org/CodeSystem/v3-ActReason", "code": p}
                ]
            }
            for p in purposes
        ],
        "agent": agents,
        "source": {
            "observer": {"display": "fhir-gateway"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                }
            ],
        },
        "entity": [
            _entity(first["patient"], "1", "1"),
            _entity(first["consent"], "2", "13", "the consent the disclosure rests on"),
            *(_entity(r, "2", "4") for r in resources),
        ],
    }


# -- the accounting -------------------------------------------------------------------------------


def accounting(
    session: Session, patient: str, *, since: datetime | None = None
) -> list[dict[str, Any]]:
    """The patient's Part 2 disclosures since ``since`` (default: three years ago), oldest first:
    AuditEvents as stored."""
    start = since or clock.now() - timedelta(days=365 * ACCOUNTING_YEARS + 1)
    rows = session.execute(
        select(audit_log)
        .where(
            audit_log.c.patient == patient,
            audit_log.c.subtype == SUBTYPE,
            audit_log.c.recorded >= clock.to_db(start),
        )
        .order_by(audit_log.c.recorded, audit_log.c.id)
    )
    return [_audit_rows.event_of(row) for row in rows if _is_disclosure(row)]


def _is_disclosure(row: Any) -> bool:
    # A row kept whole from before (kind "stored") says so in its subtype's system too.
    if row.kind == "disclosure":
        return True
    subtypes = row.detail.get("event", {}).get("subtype") or []
    return any(s.get("system") == SUBTYPE_SYSTEM for s in subtypes if isinstance(s, dict))


def accounting_bundle(
    session: Session, patient: str, *, since: datetime | None = None
) -> dict[str, Any]:
    """The accounting a patient may ask for (42 CFR 2.24, 2.25): a Bundle of the disclosure
    AuditEvents, each naming the recipient, the date, what was disclosed and the consent."""
    events = accounting(session, patient, since=since)
    return {
        "resourceType": "Bundle",
        "type": "collection",
        "timestamp": clock.to_instant(clock.now()),
        "entry": [{"fullUrl": f"AuditEvent/{e['id']}", "resource": e} for e in events],
    }
