"""The Consents the gateway reads, as builders (pure: no database): what a web form, the CLI or a
test writes, and what ``evaluate_consent``/``grants_of`` read.

A 42 CFR Part 2 consent (``part2_consent``) holds each element 42 CFR 2.31(a) requires:

=====================================  ==========================================================
2.31(a)                                FHIR Consent
=====================================  ==========================================================
(1) the patient                        ``patient``
(2) who may disclose                   ``organization`` (the Part 2 program, or its designation)
(3) what, how much                     ``provision.securityLabel`` (the labels of the data
                                       covered) and the words the patient signed
                                       (the ``consent-data-scope`` extension on ``provision``)
(4) to whom                            ``provision.actor`` (role IRCP): a named Organization,
                                       RelatedPerson, …; or, for the 2024 rule's TPO consent, the
                                       class "every treating provider of the patient": an actor
                                       whose reference is the identifier ``treating-providers``
                                       of the gateway's ``consent-recipient-class`` system
(5) purpose                            ``provision.purpose`` (v3-ActReason: TREAT, HPAYMT, HOPERAT
                                       for TPO)
(6) right to revoke in writing         the narrative, and ``revocation`` below
(7) expiry                             ``provision.period.end`` (none: until revoked)
(8)/(9) signature and date             ``performer`` (who signed), ``dateTime`` (when), the
                                       signed document as ``sourceAttachment``
=====================================  ==========================================================

SUD counselling notes (``counselling_notes=True``) need a consent of their own: its provision
lists the label PSYTHPN and names its recipients, and it covers the notes only (42 CFR 2.31(b)
as amended in 2024: never combined with another consent). A TPO consent never covers them.

``revocation`` is the written revocation: the same Consent, ``inactive``, with the signed
revocation in the ``consent-revocation`` extension (date and document); the original signed
consent stays in ``sourceAttachment``. ``describe`` puts a Consent's scope in words, the
statement that travels with each disclosure (42 CFR 2.32(b)).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any

from fhir_gateway.privacy._labels import ACT_CODE, ETH, PART2, PSYTHPN

__all__ = [
    "PART2_POLICY",
    "RECIPIENT_CLASS",
    "TREATING_PROVIDERS",
    "DATA_SCOPE_URL",
    "REVOCATION_URL",
    "TPO",
    "part2_consent",
    "family_involvement_consent",
    "revocation",
    "recipient_class",
    "describe",
]

PART2_POLICY = "https://www.ecfr.gov/current/title-42/chapter-I/subchapter-A/part-2"
RECIPIENT_CLASS = "http://fhir-gateway.org/fhir/CodeSystem/consent-recipient-class"
TREATING_PROVIDERS = "treating-providers"
DATA_SCOPE_URL = "http://fhir-gateway.org/fhir/StructureDefinition/consent-data-scope"
REVOCATION_URL = "http://fhir-gateway.org/fhir/StructureDefinition/consent-revocation"
ACT_REASON = "http://terminology.hl7.org/CodeSystem/v3-ActReason"
TPO = ("TREAT", "HPAYMT", "HOPERAT")

_PURPOSES = {
    "TREAT": "treatment",
    "ETREAT": "emergency treatment",
    "COC": "coordination of care",
    "CAREMGT": "care management",
    "HPAYMT": "healthcare payment",
    "HOPERAT": "healthcare operations",
    "PATRQT": "at the request of the patient",
    "FAMRQT": "family requested",
}
_CLASS_TEXT = "every provider with a treating-provider relationship with the patient"
_RECIPIENT_ROLE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
            "code": "IRCP",
            "display": "information recipient",
        }
    ]
}
_SCOPE = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/consentscope",
            "code": "patient-privacy",
            "display": "Privacy Consent",
        }
    ]
}
_CATEGORY = [
    {"coding": [{"system": "http://loinc.org", "code": "59284-0", "display": "Patient Consent"}]},
    {"coding": [{"system": ACT_CODE, "code": "IDSCL", "display": "information disclosure"}]},
]
_REVOKE = (
    "The patient may revoke this consent at any time, in writing, except to the extent that "
    "action has already been taken in reliance on it."
)


def _purpose(code: str) -> dict[str, str]:
    coding = {"system": ACT_REASON, "code": code}
    if code in _PURPOSES:
        coding["display"] = _PURPOSES[code]
    return coding


def _recipient(reference: str) -> dict[str, Any]:
    return {"role": _RECIPIENT_ROLE, "reference": {"reference": reference}}


def _treating_class() -> dict[str, Any]:
    return {
        "role": _RECIPIENT_ROLE,
        "reference": {
            "identifier": {"system": RECIPIENT_CLASS, "value": TREATING_PROVIDERS},
            "display": _CLASS_TEXT,
        },
    }


def _attachment(document: Mapping[str, Any] | None, signed: date | datetime) -> dict[str, Any]:
    doc = dict(document or {})
    doc.setdefault("creation", signed.isoformat())
    return doc


def _period(start: date, end: date | None) -> dict[str, str]:
    return {"start": start.isoformat(), **({"end": end.isoformat()} if end else {})}


def _consent(
    *,
    consent_id: str | None,
    patient: str,
    discloser: str | None,
    signed_on: date,
    signed_by: str,
    document: Mapping[str, Any] | None,
    provision: dict[str, Any],
) -> dict[str, Any]:
    doc: dict[str, Any] = {"resourceType": "Consent"}
    if consent_id:
        doc["id"] = consent_id
    doc |= {
        "status": "active",
        "scope": _SCOPE,
        "category": _CATEGORY,
        "patient": {"reference": patient},
        "dateTime": signed_on.isoformat(),
        "performer": [{"reference": signed_by}],
        "policy": [{"uri": PART2_POLICY}],
        "provision": provision,
    }
    if discloser:
        doc["organization"] = [{"reference": discloser}]
    if document is not None:
        doc["sourceAttachment"] = _attachment(document, signed_on)
    doc["text"] = {"status": "generated", "div": _div(describe(doc))}
    return doc


def part2_consent(
    *,
    patient: str,
    discloser: str,
    recipients: Sequence[str] | None,
    purposes: Sequence[str],
    data_scope: str,
    expires: date | None,
    signed_on: date,
    signed_by: str,
    document: Mapping[str, Any] | None,
    counselling_notes: bool = False,
    consent_id: str | None = None,
) -> dict[str, Any]:
    """A 42 CFR Part 2 consent. ``recipients`` None: the 2024 rule's TPO consent to a class, every
    treating provider of the patient. ``counselling_notes``: a consent for SUD counselling notes
    only, to the recipients it names (ValueError when asked for a class or without a purpose)."""
    if not purposes:
        raise ValueError("a Part 2 consent states its purpose (42 CFR 2.31(a)(5))")
    if recipients is not None and not recipients:
        raise ValueError(
            "a Part 2 consent names its recipients, or the class of treating providers"
        )
    if counselling_notes and recipients is None:
        raise ValueError("a consent to disclose SUD counselling notes names each recipient")
    labels = [dict(ETH), dict(PART2)] + ([dict(PSYTHPN)] if counselling_notes else [])
    actors = [_treating_class()] if recipients is None else [_recipient(r) for r in recipients]
    provision: dict[str, Any] = {
        "extension": [{"url": DATA_SCOPE_URL, "valueString": data_scope}],
        "type": "permit",
        "period": _period(signed_on, expires),
        "actor": actors,
        "purpose": [_purpose(p) for p in purposes],
        "securityLabel": labels,
    }
    return _consent(
        consent_id=consent_id,
        patient=patient,
        discloser=discloser,
        signed_on=signed_on,
        signed_by=signed_by,
        document=document,
        provision=provision,
    )


def family_involvement_consent(
    *,
    patient: str,
    related_person: str,
    data_scope: str,
    expires: date | None,
    signed_on: date,
    document: Mapping[str, Any] | None,
    consent_id: str | None = None,
) -> dict[str, Any]:
    """The patient's consent to involve a family member or carer (``RelatedPerson/…``) in the
    coordination of their care, signed by the patient."""
    provision: dict[str, Any] = {
        "extension": [{"url": DATA_SCOPE_URL, "valueString": data_scope}],
        "type": "permit",
        "period": _period(signed_on, expires),
        "actor": [_recipient(related_person)],
        "purpose": [_purpose("COC")],
    }
    return _consent(
        consent_id=consent_id,
        patient=patient,
        discloser=None,
        signed_on=signed_on,
        signed_by=patient,
        document=document,
        provision=provision,
    )


def revocation(
    consent: Mapping[str, Any], *, revoked_on: datetime, document: Mapping[str, Any]
) -> dict[str, Any]:
    """The Consent revoked in writing: ``inactive``, the signed revocation attached (the original
    signed consent stays in ``sourceAttachment``)."""
    kept = [e for e in consent.get("extension") or [] if e.get("url") != REVOCATION_URL]
    revoked = {
        "url": REVOCATION_URL,
        "extension": [
            {"url": "date", "valueDateTime": revoked_on.isoformat()},
            {"url": "document", "valueAttachment": _attachment(document, revoked_on)},
        ],
    }
    doc = {**consent, "status": "inactive", "extension": [*kept, revoked]}
    doc["text"] = {"status": "generated", "div": _div(describe(doc))}
    return doc


# -- reading the shape --------------------------------------------------------------------------


def recipient_class(actor: Mapping[str, Any]) -> str | None:
    """The class an actor designates (``treating-providers``), or None for a named recipient."""
    identifier = (actor.get("reference") or {}).get("identifier") or {}
    if identifier.get("system") == RECIPIENT_CLASS:
        return str(identifier.get("value") or "") or None
    return None


def _recipients_in_words(provision: Mapping[str, Any]) -> str:
    names = []
    for actor in provision.get("actor") or []:
        if not isinstance(actor, dict):
            continue
        ref = actor.get("reference") or {}
        if recipient_class(actor) == TREATING_PROVIDERS:
            names.append(_CLASS_TEXT)
        else:
            names.append(str(ref.get("display") or ref.get("reference") or "an unnamed recipient"))
    return ", ".join(names) or "nobody"


def _scope_words(provision: Mapping[str, Any]) -> str | None:
    for ext in provision.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == DATA_SCOPE_URL:
            return str(ext.get("valueString") or "") or None
    return None


def describe(consent: Mapping[str, Any]) -> str:
    """The Consent's scope in words: who may disclose what to whom, why, until when."""
    provision = consent.get("provision") or {}
    if not isinstance(provision, dict):
        return "A consent that cannot be read: it permits nothing."
    cid = f"Consent/{consent['id']}" if consent.get("id") else "This consent"
    discloser = ", ".join(
        str(o.get("display") or o.get("reference"))
        for o in consent.get("organization") or []
        if isinstance(o, dict)
    )
    purposes = ", ".join(
        str(p.get("display") or _PURPOSES.get(str(p.get("code")), p.get("code")))
        for p in provision.get("purpose") or []
        if isinstance(p, dict)
    )
    labels = {str(lb.get("code")) for lb in provision.get("securityLabel") or []}
    what = _scope_words(provision) or "the patient's records"
    notes = "SUD counselling notes only" if "PSYTHPN" in labels else "not SUD counselling notes"
    end = (provision.get("period") or {}).get("end")
    parts = [
        f"{cid} of {(consent.get('patient') or {}).get('reference', 'the patient')}",
        f"permits {discloser or 'the program holding the records'} to disclose {what} ({notes})",
        f"to {_recipients_in_words(provision)}",
        f"for {purposes or 'any purpose stated by the patient'}",
        f"until {end}" if end else "until revoked",
    ]
    status = consent.get("status")
    text = " ".join(parts) + "."
    if status != "active":
        text += f" It is {status or 'without a status'}: it permits nothing now."
    return f"{text} {_REVOKE}"


def _div(text: str) -> str:
    return f'<div xmlns="http://www.w3.org/1999/xhtml"><p>{html.escape(text)}</p></div>'
