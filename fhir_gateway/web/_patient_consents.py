"""The patient's consents on the patient page: what is on file, what each partner may receive of
the patient's Part 2 records and which referrals wait for that, which family members may be
involved; and recording a new consent from the signed form.

Whether a consent permits a recipient now is ``privacy.evaluate_consent``'s answer (the reading
the row policy and the care-plan engine use), asked of the consents this viewer may see. A consent
is recorded through ``services.resources.create`` with the user's Caller, so the write hooks run
exactly as for a Consent POSTed to the API: the grants are kept and the referrals waiting for that
partner's consent go to it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError, NotFound
from fhir_gateway.privacy import evaluate_consent
from fhir_gateway.privacy.consent_forms import (
    DATA_SCOPE_URL,
    REVOCATION_URL,
    TREATING_PROVIDERS,
    family_involvement_consent,
    part2_consent,
    recipient_class,
)
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.web._patient_forms import (
    PURPOSES,
    CheckedForm,
    ConsentChoices,
    Fields,
    UploadedDocument,
    check_family,
    check_part2,
)
from fhir_gateway.web._patient_provenance import record_provenance
from fhir_gateway.web._patient_reader import PatientReader, codings, concept_text

__all__ = [
    "ConsentRow",
    "PartnerConsent",
    "FamilyConsent",
    "ConsentStatus",
    "consent_status",
    "choices",
    "record_consent",
    "document_of",
    "AWAITING_CONSENT",
    "FORMS",
    "Submitted",
    "submit_consent",
    "open_reader",
]

AWAITING_CONSENT = "awaiting-consent"
_SENSITIVE = frozenset({"ETH", "42CFRPart2"})
_OPEN_TASKS = frozenset({"draft", "requested", "accepted", "in-progress", "on-hold"})
_CLASS_WORDS = {TREATING_PROVIDERS: "every treating provider of the patient"}


@dataclass(frozen=True, slots=True)
class ConsentRow:
    consent_id: str
    kind: str  # "Part 2", "Part 2 counselling notes", "Family involvement", "Consent"
    recipients: str
    purposes: str
    scope: str
    period: str
    state: str
    in_force: bool
    signed: str
    has_document: bool


@dataclass(frozen=True, slots=True)
class PartnerConsent:
    partner: str
    permitted: bool
    why: str
    waiting: list[str]  # services of the referrals waiting for this partner's consent


@dataclass(frozen=True, slots=True)
class FamilyConsent:
    name: str
    relationship: str
    permitted: bool
    why: str


@dataclass(slots=True)
class ConsentStatus:
    rows: list[ConsentRow] = field(default_factory=list)
    partners: list[PartnerConsent] = field(default_factory=list)
    family: list[FamilyConsent] = field(default_factory=list)


# -- reading -----------------------------------------------------------------------------------------


def _labels(provision: dict[str, Any]) -> set[str]:
    return {str(c.get("code")) for c in provision.get("securityLabel") or [] if isinstance(c, dict)}


def _actors(provision: dict[str, Any]) -> list[dict[str, Any]]:
    return [a for a in provision.get("actor") or [] if isinstance(a, dict)]


def _kind(provision: dict[str, Any]) -> str:
    labels = _labels(provision)
    if "PSYTHPN" in labels:
        return "Part 2 counselling notes"
    if labels & _SENSITIVE:
        return "Part 2"
    refs = [(a.get("reference") or {}).get("reference") or "" for a in _actors(provision)]
    if refs and all(r.startswith("RelatedPerson/") for r in refs):
        return "Family involvement"
    return "Consent"


def _recipients(reader: PatientReader, provision: dict[str, Any]) -> str:
    names = []
    for actor in _actors(provision):
        cls = recipient_class(actor)
        names.append(
            _CLASS_WORDS.get(cls or "", cls) if cls else reader.who(actor.get("reference"))
        )
    return ", ".join(str(n) for n in names) or "nobody"


def _scope(provision: dict[str, Any]) -> str:
    for ext in provision.get("extension") or []:
        if isinstance(ext, dict) and ext.get("url") == DATA_SCOPE_URL:
            return str(ext.get("valueString") or "")
    return ""


def _period(reader: PatientReader, provision: dict[str, Any]) -> tuple[str, bool]:
    """In words, and whether the period has ended."""
    period = provision.get("period") or {}
    start, end = period.get("start"), period.get("end")
    ended = bool(end) and reader.clock.past(end) and reader.clock.day(end) != "today"
    words = f"until {reader.clock.day(end)}" if end else "until revoked"
    return (f"from {reader.clock.day(start)} {words}" if start else words), ended


def _state(consent: dict[str, Any], ended: bool) -> tuple[str, bool]:
    status = consent.get("status")
    if status == "active":
        return ("Expired", False) if ended else ("In force", True)
    revoked = any(e.get("url") == REVOCATION_URL for e in consent.get("extension") or [])
    if status == "inactive":
        return ("Revoked in writing" if revoked else "No longer in force"), False
    return str(status or "unknown").replace("-", " ").capitalize(), False


def _row(reader: PatientReader, consent: dict[str, Any]) -> ConsentRow:
    provision = consent.get("provision") if isinstance(consent.get("provision"), dict) else {}
    assert isinstance(provision, dict)
    period, ended = _period(reader, provision)
    state, in_force = _state(consent, ended)
    signers = ", ".join(reader.who(p) for p in consent.get("performer") or [])
    signed_on = consent.get("dateTime")
    attachment = consent.get("sourceAttachment") or {}
    return ConsentRow(
        consent_id=str(consent.get("id")),
        kind=_kind(provision),
        recipients=_recipients(reader, provision),
        purposes=", ".join(_purpose(p) for p in provision.get("purpose") or []) or "any purpose",
        scope=_scope(provision),
        period=period,
        state=state,
        in_force=in_force,
        signed=(f"signed by {signers or 'someone not named'}")
        + (f" {on_day(reader.clock.day(signed_on))}" if signed_on else ""),
        has_document=bool(attachment.get("data")),
    )


def _purpose(coding: Any) -> str:
    """A purpose of use (a Coding) in words."""
    if not isinstance(coding, dict):
        return ""
    return str(coding.get("display") or PURPOSES.get(str(coding.get("code")), coding.get("code")))


def on_day(day: str) -> str:
    """ "today", or "on Mon 10 Mar" """
    return day if day in ("today", "yesterday", "tomorrow") else f"on {day}"


def _waiting(task: dict[str, Any]) -> bool:
    return any(c.get("code") == AWAITING_CONSENT for c in codings(task.get("businessStatus"))) and (
        task.get("status") in _OPEN_TASKS
    )


def _needs_consent(task: dict[str, Any]) -> bool:
    labels = {lb.get("code") for lb in (task.get("meta") or {}).get("security") or []}
    return _waiting(task) or bool(labels & _SENSITIVE)


def _service(reader: PatientReader, task: dict[str, Any]) -> str:
    request = reader.names.resource(task.get("focus")) or {}
    return concept_text(request.get("code"), "a referral")


def _partner_rows(
    reader: PatientReader, consents: list[dict[str, Any]], tasks: list[dict[str, Any]]
) -> list[PartnerConsent]:
    owners: dict[str, list[str]] = {}
    for task in tasks:
        owner = (task.get("owner") or {}).get("reference")
        if owner and task.get("status") in _OPEN_TASKS and _needs_consent(task):
            waiting = owners.setdefault(owner, [])
            if _waiting(task):
                waiting.append(_service(reader, task))
    for consent in consents:
        provision = consent.get("provision") or {}
        if isinstance(provision, dict) and _labels(provision) & _SENSITIVE:
            for actor in _actors(provision):
                ref = (actor.get("reference") or {}).get("reference") or ""
                if ref.startswith("Organization/"):
                    owners.setdefault(ref, [])
    related = {(t.get("owner") or {}).get("reference") for t in tasks}
    partners = careplans.directory(reader.session)
    rows = []
    for org, waiting in owners.items():
        # A referral's owner is judged as the directory marks it (a TPO consent to the class of
        # treating providers reaches it); one only named in a consent, by that name alone.
        recipient = partners.recipient(org) if org in related else org
        decision = evaluate_consent(
            consents, patient=reader.patient_ref, recipient=recipient, at=clock.now()
        )
        rows.append(
            PartnerConsent(
                partner=reader.names.of(org),
                permitted=decision.permitted,
                why=_why(reader, consents, decision.consent, decision.permitted),
                waiting=waiting,
            )
        )
    return sorted(rows, key=lambda r: (r.permitted, r.partner))


def _why(
    reader: PatientReader,
    consents: list[dict[str, Any]],
    consent: str | None,
    permitted: bool,
    whom: str = "partner",
) -> str:
    if not permitted:
        return f"No consent in force for this {whom}."
    found = next((c for c in consents if f"Consent/{c.get('id')}" == consent), None)
    if found is None:
        return "A consent in force permits it."
    provision = found.get("provision") or {}
    period, _ = _period(reader, provision if isinstance(provision, dict) else {})
    return f"Consent signed {on_day(reader.clock.day(found.get('dateTime')))}, {period}."


def _family_rows(
    reader: PatientReader, consents: list[dict[str, Any]], related: list[dict[str, Any]]
) -> list[FamilyConsent]:
    rows = []
    for person in related:
        ref = f"RelatedPerson/{person.get('id')}"
        decision = evaluate_consent(
            consents, patient=reader.patient_ref, recipient=ref, at=clock.now(), labels=()
        )
        rows.append(
            FamilyConsent(
                name=reader.names.of(ref),
                relationship=", ".join(concept_text(r) for r in person.get("relationship") or []),
                permitted=decision.permitted,
                why=_why(reader, consents, decision.consent, decision.permitted, "person"),
            )
        )
    return rows


def consent_status(reader: PatientReader, related: list[dict[str, Any]]) -> ConsentStatus:
    consents = reader.of_patient("Consent")
    tasks = reader.of_patient("Task")
    reader.names.prefetch((t.get("focus") or {}).get("reference") for t in tasks)
    rows = sorted((_row(reader, c) for c in consents), key=lambda r: (not r.in_force, r.kind))
    return ConsentStatus(
        rows, _partner_rows(reader, consents, tasks), _family_rows(reader, consents, related)
    )


# -- what the forms offer -------------------------------------------------------------------------------


def _directory_partners(reader: PatientReader) -> dict[str, str]:
    services = reader.find("HealthcareService", [("active", "true")])
    orgs = {(s.get("providedBy") or {}).get("reference") for s in services}
    named = {o: reader.names.of(o) for o in orgs if o}
    return dict(sorted(named.items(), key=lambda kv: kv[1]))


def _disclosers(reader: PatientReader) -> dict[str, str]:
    """The facilities that sent this patient's stays (the Part 2 programs), then the caller's
    own organisation (the care-coordination team discloses what it holds)."""
    found: dict[str, str] = {}
    for enc in reader.of_patient("Encounter", "subject"):
        for header in reader.find("MessageHeader", [("focus", f"Encounter/{enc.get('id')}")]):
            sender = (header.get("sender") or {}).get("reference")
            if sender and sender not in found:
                found[sender] = reader.names.of(sender)
    own = reader.caller.organization
    if own and own not in found:
        found[own] = reader.names.of(own)
    return found


def choices(reader: PatientReader, related: list[dict[str, Any]]) -> ConsentChoices:
    people = {
        f"RelatedPerson/{p.get('id')}": reader.names.of(f"RelatedPerson/{p.get('id')}")
        for p in related
    }
    patient = reader.names.of(reader.patient_ref)
    partners = _directory_partners(reader)
    waiting = [
        (t.get("owner") or {}).get("reference") for t in reader.of_patient("Task") if _waiting(t)
    ]
    first = {
        o: partners[o] for o in waiting if o in partners
    }  # the ones the patient's referrals wait for
    return ConsentChoices(
        partners={**first, **partners},
        disclosers=_disclosers(reader),
        signers={reader.patient_ref: f"{patient} (the patient)", **people},
        related=people,
    )


# -- writing ---------------------------------------------------------------------------------------------


def record_consent(
    session: Session, caller: Caller, user: str, consent: dict[str, Any], kind: str
) -> str:
    """Store the Consent as the caller, and who recorded it; its id."""
    written = resources.create(session, "Consent", consent, caller)
    stored = written.stored
    assert stored is not None
    record_provenance(
        session,
        caller,
        user,
        target=f"Consent/{stored.res_id}/_history/{stored.version_id}",
        activity=f"{kind} consent recorded",
        code="CREATE",
    )
    return stored.res_id


def document_of(
    session: Session, caller: Caller, patient_id: str, consent_id: str
) -> dict[str, Any]:
    """The signed document of the patient's consent, as this caller may read it."""
    missing = NotFound("This patient has no such signed consent document.")
    try:
        consent = resources.read_served(session, "Consent", consent_id, caller).content
    except GatewayError as exc:
        raise missing from exc
    attachment = consent.get("sourceAttachment") or {}
    if (consent.get("patient") or {}).get("reference") != f"Patient/{patient_id}" or not (
        attachment.get("data")
    ):
        raise missing
    return dict(attachment)


@dataclass(frozen=True, slots=True)
class Submitted:
    checked: CheckedForm
    consent_id: str | None = None
    sent: int = 0  # referrals that were waiting for this consent and went to their partners


def submit_consent(
    session: Session,
    caller: Caller,
    settings: Settings,
    user: str,
    patient_id: str,
    kind: str,
    fields: Fields,
    upload: UploadedDocument | None,
) -> Submitted:
    """Check the form against what it offered; when it is right, record the consent (one
    transaction: the consent, who recorded it, and what the write hooks release)."""
    opened = open_reader(session, caller, settings, patient_id)
    related = opened.of_patient("RelatedPerson")
    offered = choices(opened, related)
    check = check_part2 if kind == "part2" else check_family
    checked = check(fields, upload, offered, patient=opened.patient_ref, today=opened.clock.today)
    if not checked.ok:
        return Submitted(checked)
    build = part2_consent if kind == "part2" else family_involvement_consent
    try:
        consent = build(**checked.arguments)
    except ValueError as exc:  # the builder's own rule (e.g. counselling notes apart)
        checked.errors["form"] = f"{str(exc)[:1].upper()}{str(exc)[1:]}."
        return Submitted(checked)
    before = _waiting_ids(opened)
    consent_id = record_consent(session, caller, user, consent, FORMS[kind])
    after = _waiting_ids(PatientReader.open(session, caller, settings, patient_id))
    return Submitted(checked, consent_id, len(before - after))


FORMS = {"part2": "Part 2", "family": "Family involvement"}


def open_reader(
    session: Session, caller: Caller, settings: Settings, patient_id: str
) -> PatientReader:
    """A reader for a patient the caller may see; else "no such patient", as for a missing one."""
    reader = PatientReader.open(session, caller, settings, patient_id)
    if reader.names.resource(reader.patient_ref) is None:
        raise NotFound(f"There is no patient {patient_id}.")
    return reader


def _waiting_ids(reader: PatientReader) -> set[str]:
    return {str(t.get("id")) for t in reader.of_patient("Task") if _waiting(t)}
