"""Who sees which rows, and which copy of them: the row policy behind ``store.visibility``.

Rows (SQL over the search index, so that search, ``_include``/``_revinclude``, chains, ``_has``,
history and conditional interactions agree):

* Every caller sees only the types its scopes (within its role) let it read or search.
* system, admin, case-manager: every row of those types.
* ehr, hospital: every row, except ETH/42CFRPart2-labelled ones whose patient has not consented
  to the caller's organisation (``privacy.grants_of``, kept in ``consent_grants`` by ``_consent``:
  a grant names the organisation, or is for the class of treating providers, which reaches an
  organisation the directory marks ``treating-provider`` that has a treating relationship with
  the patient, ``related``; SUD counselling notes, PSYTHPN, need a grant for them and other data
  a grant for the rest);
  a hospital's message (``MessageSender``) also sees what earlier messages of the same sender last
  wrote.
* partner (an organisation of the partner directory):
  - a Task it owns (``owner`` = its Organization) that is no longer a ``draft``, or an unassigned
    ``requested`` Task it is *eligible* for: the Task's ServiceRequest (``focus``) has a ``code``
    that one of the organisation's active HealthcareServices offers (``HealthcareService.type``,
    ``providedBy`` = the organisation). That is the same service match the care-plan engine uses
    to pick owners;
  - the ServiceRequest (``focus``) and the Patient (``for``) of such a Task;
  - the messages (Communication) on a Task it owns (``basedOn`` or ``partOf`` names the Task):
    not those of a Task it could only claim, nor of another partner's;
  - the partner directory (Organization, HealthcareService, Location, Endpoint, Practitioner,
    PractitionerRole);
  - the Consents it receives data under (a grant of that Consent reaches it now);
  - and, like ehr, nothing ETH/42CFRPart2-labelled without the patient's Consent — a Task hidden
    that way also hides its ServiceRequest and Patient;
  - of a patient it *treats* (``privacy.treating_partner_relapse_rule``: it owns an accepted,
    in-progress or on-hold referral Task of the patient that it may see), the patient's
    relapse-prevention plans and the warning-signs reports it wrote itself (``author``), and
    the two relapse Questionnaires; labels and consents apply to them as to the rest;
  - India's Mental Healthcare Act 2017 (``_mhca_rows``): a referral labelled MHCA2017 only as its
    owner (not open for others to claim), and what an in-force s23(2)(c)–(g) release names for it.

Copies: a partner receives the minimum of a Patient (name, birth date, telecom, address,
communication language), tagged SUBSETTED; every ETH/42CFRPart2 resource disclosed outside the
care-coordination team (partner, ehr, hospital) is ``privacy.disclosure_copy``: under the consent
that permits it (``_disclosures.basis``) the 2.32 notice, the consent, purposes and obligations,
NORDSCLCD unless the recipient is a HIPAA covered entity or business associate (without a session
to find the consent: NORDSCLCD alone); elements whose inline labels the caller may not see are left
out. Copies served under a consent are noted for the accounting of disclosures.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import ColumnElement, DateTime, and_, bindparam, exists, false, not_, or_, select
from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy
from fhir_gateway.context import Caller
from fhir_gateway.fhir.references import Reference
from fhir_gateway.fhir.types import RESOURCE_TYPES
from fhir_gateway.privacy import (
    ACT_CODE,
    NOT_RELATED_STATUSES,
    PART2_RECIPIENT,
    RELAPSE_PLAN_URL,
    RELAPSE_QUESTIONNAIRES,
    SENSITIVE,
    TREATING_CLASS,
    TREATING_PROVIDER,
    TREATING_STATUSES,
    WARNING_SIGNS_REPORT_URL,
    is_sensitive,
    merge_labels,
)
from fhir_gateway.security import _disclosures
from fhir_gateway.security._label_rows import labelled
from fhir_gateway.security._mhca_rows import mhca_labelled, released
from fhir_gateway.security._roles import MessageSender
from fhir_gateway.store import repository as repo
from fhir_gateway.store import visibility
from fhir_gateway.store.inbox_tables import inbox_messages, source_times
from fhir_gateway.store.security_tables import consent_grants
from fhir_gateway.store.tables import idx_reference, idx_token, idx_uri, resources

__all__ = [
    "RowPolicy",
    "visible_to",
    "redact_for",
    "partner_caller",
    "related",
    "treating_referrals",
    "SUBSETTED",
    "OUTSIDERS",
]

SUBSETTED = {
    "system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
    "code": "SUBSETTED",
    "display": "subsetted",
}
OUTSIDERS = frozenset({"partner", "ehr", "hospital"})  # outside the care-coordination team
DIRECTORY = (
    "Organization",
    "HealthcareService",
    "Location",
    "Endpoint",
    "Practitioner",
    "PractitionerRole",
)
_PATIENT_MINIMUM = ("resourceType", "id", "meta", "name", "birthDate", "telecom", "address")
_PATIENT_PARAMS = ("patient", "subject")
_CONSENTED = SENSITIVE | {"PSYTHPN"}  # labels only a consent lets out of the care team


@lru_cache(maxsize=1024)
def _readable(role: str, scopes: frozenset[str]) -> tuple[str, ...] | None:
    """The types this caller may read or search; None when that is every type."""
    probe = bounded(Caller(client_id="-", role=role, scopes=scopes))
    types = tuple(t for t in sorted(RESOURCE_TYPES) if probe.can(t, "r") or probe.can(t, "s"))
    return None if len(types) == len(RESOURCE_TYPES) else types


def _org_id(caller: Caller) -> str | None:
    return Reference.id_of(caller.organization, "Organization")


# -- SQL building blocks -------------------------------------------------------------------------


def _sensitive(r: Any) -> ColumnElement[bool]:
    return labelled(r, ACT_CODE, SENSITIVE)


def _db_now() -> Any:
    return clock.to_db(clock.now())


def _labelled(r: Any, code: str) -> ColumnElement[bool]:
    return labelled(r, ACT_CODE, [code])


def _treating(org_id: str) -> ColumnElement[bool]:
    """The directory marks the organisation a treating provider."""
    t = idx_token.alias()
    return exists().where(
        t.c.res_type == "Organization",
        t.c.res_id == org_id,
        t.c.param == "type",
        t.c.system == PART2_RECIPIENT,
        t.c.code == TREATING_PROVIDER,
    )


def related(org_id: str, patient_id: Any) -> ColumnElement[bool]:
    """A treating relationship (``privacy._recipients``): the organisation owns a live referral
    Task of the patient, or takes part in one of the patient's CareTeams."""
    owner, subject, status = idx_reference.alias(), idx_reference.alias(), idx_token.alias()
    refused = (
        exists()
        .where(
            status.c.res_type == "Task",
            status.c.res_id == owner.c.res_id,
            status.c.param == "status",
            status.c.code.in_(NOT_RELATED_STATUSES),
        )
        .correlate_except(status)
    )
    referral = (
        exists()
        .where(
            owner.c.res_type == "Task",
            owner.c.param == "owner",
            owner.c.target_type == "Organization",
            owner.c.target_id == org_id,
            subject.c.res_type == "Task",
            subject.c.res_id == owner.c.res_id,
            subject.c.param == "patient",
            subject.c.target_type == "Patient",
            subject.c.target_id == patient_id,
            not_(refused),
        )
        .correlate_except(owner, subject)
    )
    member, team = idx_reference.alias(), idx_reference.alias()
    care_team = (
        exists()
        .where(
            member.c.res_type == "CareTeam",
            member.c.param == "participant",
            member.c.target_type == "Organization",
            member.c.target_id == org_id,
            team.c.res_type == "CareTeam",
            team.c.res_id == member.c.res_id,
            team.c.param == "patient",
            team.c.target_type == "Patient",
            team.c.target_id == patient_id,
        )
        .correlate_except(member, team)
    )
    return or_(referral, care_team)


def _reaches(g: Any, organization: str) -> ColumnElement[bool]:
    """The grant names the organisation, or is for the class of treating providers and the
    organisation is one with a treating relationship to the grant's patient."""
    named = g.c.organization == organization
    org_id = Reference.id_of(organization, "Organization")
    if org_id is None:
        return named
    in_class = and_(
        g.c.organization == TREATING_CLASS, _treating(org_id), related(org_id, g.c.patient_id)
    )
    return or_(named, in_class)


def _for_notes(g: Any, r: Any) -> ColumnElement[bool]:
    """SUD counselling notes need a grant for them; everything else a grant for everything else."""
    notes = _labelled(r, "PSYTHPN")
    return or_(and_(g.c.notes.is_(True), notes), and_(g.c.notes.is_(False), not_(notes)))


def _consented(r: Any, organization: str) -> ColumnElement[bool]:
    """An in-force grant of the row's patient (the Patient itself, or its patient/subject) that
    reaches the organisation, for data like the row's (counselling notes or not)."""
    g = consent_grants.alias()
    ref = idx_reference.alias()
    # The time is bound when the query runs, so a built condition can be kept and reused.
    now = bindparam("now", callable_=_db_now, type_=DateTime(), unique=True)
    patients = (
        select(ref.c.target_id)
        .where(
            ref.c.res_type == r.c.res_type,
            ref.c.res_id == r.c.res_id,
            ref.c.param.in_(_PATIENT_PARAMS),
            ref.c.target_type == "Patient",
        )
        .correlate_except(ref)
    )  # r is two levels up; uncorrelated, any patient's grant matched
    return (
        exists()
        .where(
            or_(
                and_(r.c.res_type == "Patient", g.c.patient_id == r.c.res_id),
                g.c.patient_id.in_(patients),
            ),
            or_(g.c.starts.is_(None), g.c.starts <= now),
            or_(g.c.ends.is_(None), g.c.ends > now),
            _reaches(g, organization),
            _for_notes(g, r),
        )
        .correlate_except(g)
    )


def _consent_to(r: Any, organization: str) -> ColumnElement[bool]:
    """A Consent that grants to the organisation now (the recipient may read the consent it
    receives data under, 42 CFR 2.32(b))."""
    g = consent_grants.alias()
    now = bindparam("now", callable_=_db_now, type_=DateTime(), unique=True)
    return (
        exists()
        .where(
            g.c.consent_id == r.c.res_id,
            or_(g.c.starts.is_(None), g.c.starts <= now),
            or_(g.c.ends.is_(None), g.c.ends > now),
            _reaches(g, organization),
        )
        .correlate_except(g)
    )


def _label_rule(r: Any, caller: Caller) -> ColumnElement[bool]:
    allowed = [not_(_sensitive(r))]
    if caller.organization is not None:
        allowed.append(_consented(r, caller.organization))
    if isinstance(caller, MessageSender):
        allowed.append(_sent_by(r, caller.sender))
    return or_(*allowed)


def _sent_by(r: Any, sender: str) -> ColumnElement[bool]:
    """Last written by a message of ``sender``: a hospital's message may update the records its
    own earlier messages brought (its Part 2 discharge after its admit), and only those."""
    st, msg = source_times.alias(), inbox_messages.alias()
    return (
        exists()
        .where(
            st.c.res_type == r.c.res_type,
            st.c.res_id == r.c.res_id,
            msg.c.id == st.c.message_id,
            msg.c.sender == sender,
        )
        .correlate_except(st, msg)
    )


# The Task rules are correlated EXISTS on the row's own index entries: a check of one row, or of
# the rows a search already narrowed, costs a few index probes whatever the size of the store
# (sets of every owned or requested Task, built per query, grew with it).


def _task_link(t: Any, param: str, **match: str) -> ColumnElement[bool]:
    ref = idx_reference.alias()
    conds = [ref.c.res_type == "Task", ref.c.res_id == t.c.res_id, ref.c.param == param]
    conds += [ref.c[k] == v for k, v in match.items()]
    return exists().where(*conds).correlate_except(ref)


def _task_status(t: Any, code: str) -> ColumnElement[bool]:
    tok = idx_token.alias()
    return (
        exists()
        .where(
            tok.c.res_type == "Task",
            tok.c.res_id == t.c.res_id,
            tok.c.param == "status",
            tok.c.code == code,
        )
        .correlate_except(tok)
    )


def _eligible(t: Any, org_id: str) -> ColumnElement[bool]:
    """The Task's ServiceRequest asks for a service that an active HealthcareService of the
    organisation offers."""
    focus, sr_code, offer = idx_reference.alias(), idx_token.alias(), idx_token.alias()
    provider, inactive = idx_reference.alias(), idx_token.alias()
    provided = (
        exists()
        .where(
            provider.c.res_type == "HealthcareService",
            provider.c.res_id == offer.c.res_id,
            provider.c.param == "organization",
            provider.c.target_type == "Organization",
            provider.c.target_id == org_id,
        )
        .correlate_except(provider)
    )
    retired = (
        exists()
        .where(
            inactive.c.res_type == "HealthcareService",
            inactive.c.res_id == offer.c.res_id,
            inactive.c.param == "active",
            inactive.c.code == "false",
        )
        .correlate_except(inactive)
    )
    return (
        exists()
        .where(
            focus.c.res_type == "Task",
            focus.c.res_id == t.c.res_id,
            focus.c.param == "focus",
            focus.c.target_type == "ServiceRequest",
            sr_code.c.res_type == "ServiceRequest",
            sr_code.c.res_id == focus.c.target_id,
            sr_code.c.param == "code",
            offer.c.res_type == "HealthcareService",
            offer.c.param == "service-type",
            offer.c.code == sr_code.c.code,
            offer.c.system == sr_code.c.system,
            provided,
            not_(retired),
        )
        .correlate_except(focus, sr_code, offer)
    )


def _owned(t: Any, org_id: str) -> ColumnElement[bool]:
    return and_(
        _task_link(t, "owner", target_type="Organization", target_id=org_id),
        not_(_task_status(t, "draft")),
    )


def _partner_task(t: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    owned = _owned(t, org_id)
    open_for_claim = and_(
        not_(_task_link(t, "owner")),
        _task_status(t, "requested"),
        not_(mhca_labelled(t)),  # MHCA s23(2)(b): only those providing care
        _eligible(t, org_id),
    )
    return and_(t.c.res_type == "Task", or_(owned, open_for_claim), _label_rule(t, caller))


def _owned_task(t: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    return and_(t.c.res_type == "Task", _owned(t, org_id), _label_rule(t, caller))


def _on_owned_task(r: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    """The row (a message) names, in ``basedOn`` or ``partOf``, a Task the partner owns."""
    t = resources.alias()
    link = idx_reference.alias()
    return (
        exists()
        .where(
            link.c.res_type == r.c.res_type,
            link.c.res_id == r.c.res_id,
            link.c.param.in_(("based-on", "part-of")),
            link.c.target_type == "Task",
            t.c.res_type == "Task",
            t.c.res_id == link.c.target_id,
            t.c.deleted.is_(False),
            _owned_task(t, caller, org_id),
        )
        .correlate_except(t, link)
    )


def _via_visible_task(r: Any, caller: Caller, org_id: str, param: str) -> ColumnElement[bool]:
    """The row is what a visible Task points at through ``param`` (focus, patient)."""
    t = resources.alias()
    link = idx_reference.alias()
    return (
        exists()
        .where(
            link.c.res_type == "Task",
            link.c.param == param,
            link.c.target_type == r.c.res_type,
            link.c.target_id == r.c.res_id,
            t.c.res_type == "Task",
            t.c.res_id == link.c.res_id,
            t.c.deleted.is_(False),
            _partner_task(t, caller, org_id),
        )
        .correlate_except(t, link)
    )


# -- a treating partner and the relapse-prevention plan (privacy.treating_partner_relapse_rule) ----


def _treating_task(t: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    """A referral Task through which the partner treats its patient now."""
    tok = idx_token.alias()
    treating = (
        exists()
        .where(
            tok.c.res_type == "Task",
            tok.c.res_id == t.c.res_id,
            tok.c.param == "status",
            tok.c.code.in_(TREATING_STATUSES),
        )
        .correlate_except(tok)
    )
    return and_(_owned_task(t, caller, org_id), treating)


def _treated_subject(r: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    """The row's ``subject`` is a patient the partner treats."""
    subject, link, t = idx_reference.alias(), idx_reference.alias(), resources.alias()
    return (
        exists()
        .where(
            subject.c.res_type == r.c.res_type,
            subject.c.res_id == r.c.res_id,
            subject.c.param == "subject",
            subject.c.target_type == "Patient",
            link.c.res_type == "Task",
            link.c.param == "patient",
            link.c.target_type == "Patient",
            link.c.target_id == subject.c.target_id,
            t.c.res_type == "Task",
            t.c.res_id == link.c.res_id,
            t.c.deleted.is_(False),
            _treating_task(t, caller, org_id),
        )
        .correlate_except(subject, link, t)
    )


def _answers(r: Any, url: str) -> ColumnElement[bool]:
    """The response answers the Questionnaire ``url``."""
    q = idx_reference.alias()
    return (
        exists()
        .where(
            q.c.res_type == r.c.res_type,
            q.c.res_id == r.c.res_id,
            q.c.param == "questionnaire",
            q.c.url == url,
        )
        .correlate_except(q)
    )


def _authored_by(r: Any, org_id: str) -> ColumnElement[bool]:
    a = idx_reference.alias()
    return (
        exists()
        .where(
            a.c.res_type == r.c.res_type,
            a.c.res_id == r.c.res_id,
            a.c.param == "author",
            a.c.target_type == "Organization",
            a.c.target_id == org_id,
        )
        .correlate_except(a)
    )


def _has_url(r: Any, urls: tuple[str, ...]) -> ColumnElement[bool]:
    u = idx_uri.alias()
    return (
        exists()
        .where(
            u.c.res_type == r.c.res_type,
            u.c.res_id == r.c.res_id,
            u.c.param == "url",
            u.c.value.in_(urls),
        )
        .correlate_except(u)
    )


def _relapse_response(r: Any, caller: Caller, org_id: str) -> ColumnElement[bool]:
    """The plan of a patient the partner treats, and the reports it wrote about that patient."""
    return and_(
        r.c.res_type == "QuestionnaireResponse",
        or_(
            _answers(r, RELAPSE_PLAN_URL),
            and_(_answers(r, WARNING_SIGNS_REPORT_URL), _authored_by(r, org_id)),
        ),
        _treated_subject(r, caller, org_id),
        _label_rule(r, caller),
    )


def treating_referrals(session: Session, caller: Caller, patient_id: str) -> list[str] | None:
    """The ServiceRequests of the partner's referrals through which it treats the patient (the
    ``focus`` of each, when it has one), or None when it does not treat the patient."""
    org_id = _org_id(caller)
    if caller.role != "partner" or org_id is None:
        return None
    t, link, focus = resources.alias(), idx_reference.alias(), idx_reference.alias()
    on_focus = and_(
        focus.c.res_type == "Task",
        focus.c.res_id == t.c.res_id,
        focus.c.param == "focus",
        focus.c.target_type == "ServiceRequest",
    )
    rows = session.execute(
        select(t.c.res_id, focus.c.target_id)
        .select_from(t.outerjoin(focus, on_focus))
        .where(
            t.c.res_type == "Task",
            t.c.deleted.is_(False),
            exists()
            .where(
                link.c.res_type == "Task",
                link.c.res_id == t.c.res_id,
                link.c.param == "patient",
                link.c.target_type == "Patient",
                link.c.target_id == patient_id,
            )
            .correlate_except(link),
            _treating_task(t, caller, org_id),
        )
    ).all()
    if not rows:
        return None
    return sorted({f"ServiceRequest/{target}" for _, target in rows if target})


def _released_to(r: Any, caller: Caller, org_id: str, res_type: str) -> ColumnElement[bool]:
    """What an MHCA s23(2)(c)–(g) release names for the organisation (labels still apply)."""
    return and_(r.c.res_type == res_type, released(r, org_id), _label_rule(r, caller))


def _partner_rows(r: Any, caller: Caller, res_type: str | None = None) -> ColumnElement[bool]:
    """What a partner sees: the directory, its Tasks (and those open for it to claim), the
    ServiceRequest and Patient of those Tasks, and the messages on the Tasks it owns. Given
    ``res_type``, only that type's rule."""
    org_id = _org_id(caller)
    if org_id is None:
        return false()
    rules = {
        "Task": lambda: or_(
            _partner_task(r, caller, org_id), _released_to(r, caller, org_id, "Task")
        ),
        "ServiceRequest": lambda: and_(
            r.c.res_type == "ServiceRequest",
            or_(_via_visible_task(r, caller, org_id, "focus"), released(r, org_id)),
            _label_rule(r, caller),
        ),
        "Patient": lambda: and_(
            r.c.res_type == "Patient",
            or_(_via_visible_task(r, caller, org_id, "patient"), released(r, org_id)),
            _label_rule(r, caller),
        ),
        "Consent": lambda: and_(
            r.c.res_type == "Consent",
            _consent_to(r, caller.organization or ""),
            _label_rule(r, caller),
        ),
        "Communication": lambda: and_(
            r.c.res_type == "Communication",
            _on_owned_task(r, caller, org_id),
            _label_rule(r, caller),
        ),
        "QuestionnaireResponse": lambda: _relapse_response(r, caller, org_id),
        "Questionnaire": lambda: and_(
            r.c.res_type == "Questionnaire", _has_url(r, RELAPSE_QUESTIONNAIRES)
        ),
    }
    if res_type is not None:
        return (
            r.c.res_type.in_(DIRECTORY) if res_type in DIRECTORY else rules.get(res_type, false)()
        )
    return or_(r.c.res_type.in_(DIRECTORY), *(rule() for rule in rules.values()))


def _type_filter(r: Any, types: tuple[str, ...]) -> ColumnElement[bool]:
    if not types:
        return false()
    excluded = sorted(set(RESOURCE_TYPES) - set(types))
    return r.c.res_type.not_in(excluded) if len(excluded) < len(types) else r.c.res_type.in_(types)


# -- the policy ----------------------------------------------------------------------------------


class RowPolicy:
    """Implements ``store.visibility.VisibilityPolicy``."""

    def restricted(self, caller: Caller) -> bool:
        return caller.role in OUTSIDERS

    def where(
        self, caller: Caller, r: Any, res_type: str | None = None
    ) -> ColumnElement[bool] | None:
        if caller.role == "system":
            return None
        conds: list[ColumnElement[bool]] = []
        types = _readable(caller.role, caller.scopes)
        if types is not None:
            conds.append(_type_filter(r, types))
        if caller.role == "partner":
            conds.append(_partner_rows(r, caller, res_type))
        elif caller.role in OUTSIDERS:
            conds.append(_label_rule(r, caller))
        if not conds:
            return None
        return and_(*conds) if len(conds) > 1 else conds[0]

    def serve(
        self, caller: Caller, resource: dict[str, Any], session: Session | None = None
    ) -> dict[str, Any]:
        if caller.role not in OUTSIDERS:
            return resource
        if caller.role == "partner" and resource.get("resourceType") == "Patient":
            resource = _minimal_patient(resource)
        resource = _without_unseen_elements(session, caller, resource)
        if not is_sensitive(resource):
            return resource
        if session is None:  # no consent can be looked up: the labels and NORDSCLCD
            return privacy.disclosure_copy(resource)
        basis = _disclosures.basis(session, caller, resource)
        if basis is not None:
            _disclosures.note(session, caller, resource, basis)
        return privacy.disclosure_copy(resource, basis)

    def serve_version(
        self, session: Session, caller: Caller, version: repo.StoredResource
    ) -> dict[str, Any] | None:
        # An older, labelled version of something now unlabelled stays with the team: the row
        # rule (checked on the current version) could not have asked for the Consent.
        if caller.role in OUTSIDERS and is_sensitive(version.content):
            if not _current_sensitive(session, version.res_type, version.res_id):
                return None
        return self.serve(caller, version.content, session)


def _without_unseen_elements(
    session: Session | None, caller: Caller, resource: dict[str, Any]
) -> dict[str, Any]:
    """Elements with inline labels this caller may not see go, with their labels."""

    def may_see(codes: frozenset[str]) -> bool:
        if not codes & _CONSENTED:
            return True
        if session is None:
            return False
        return _disclosures.basis(session, caller, resource, codes) is not None

    return privacy.without_unseen_elements(resource, may_see)


def _minimal_patient(patient: dict[str, Any]) -> dict[str, Any]:
    out = {k: patient[k] for k in _PATIENT_MINIMUM if k in patient}
    languages = [
        {"language": c["language"], **({"preferred": c["preferred"]} if "preferred" in c else {})}
        for c in patient.get("communication") or []
        if isinstance(c, dict) and c.get("language")
    ]
    if languages:
        out["communication"] = languages
    meta = dict(out.get("meta") or {})
    meta["tag"] = merge_labels(meta.get("tag") or [], [dict(SUBSETTED)])
    out["meta"] = meta
    return out


# -- for other modules (notifications, workflow) -------------------------------------------------


def bounded(caller: Caller) -> Caller:
    """The caller with its role's ceiling applied, however it was built (e.g. a plain Caller kept
    beside a Subscription): only the gateway itself is unbounded."""
    from fhir_gateway.security._roles import TokenCaller

    if caller.role == "system" or isinstance(caller, TokenCaller):
        return caller
    return TokenCaller(
        caller.client_id, caller.role, caller.organization, caller.scopes, caller.address
    )


def visible_to(session: Session, caller: Caller, res_type: str, res_id: str) -> bool:
    """May ``caller`` receive the current ``res_type/res_id`` (by any path)?"""
    caller = bounded(caller)
    if not caller.can(res_type, "r") and not caller.can(res_type, "s"):
        return False
    return visibility.is_visible(session, caller, res_type, res_id)


def redact_for(session: Session, caller: Caller, resource: dict[str, Any]) -> dict[str, Any] | None:
    """The copy of a stored resource ``caller`` may receive (e.g. in a notification), or None.

    Visibility is decided on the stored current version; the copy is made from ``resource``.
    """
    caller = bounded(caller)
    res_type, res_id = resource.get("resourceType"), resource.get("id")
    if not res_type or not res_id or not visible_to(session, caller, res_type, res_id):
        return None
    if is_sensitive(resource) and not _current_sensitive(session, res_type, res_id):
        return None  # an older, labelled version of something now unlabelled: not for outsiders
    return visibility.current().serve(caller, resource, session)


def _current_sensitive(session: Session, res_type: str, res_id: str) -> bool:
    stored = repo.read(session, res_type, res_id)
    return stored is not None and is_sensitive(stored.content)


def partner_caller(organization: str) -> Caller:
    """The rights of a partner organisation as such, for pushing notifications to it."""
    from fhir_gateway.security._roles import TokenCaller

    scopes = frozenset({"system/Task.rs", "system/ServiceRequest.rs", "system/Patient.rs"})
    return TokenCaller(
        client_id=f"partner:{organization}",
        role="partner",
        organization=organization,
        scopes=scopes,
    )
