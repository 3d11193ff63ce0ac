"""Work items of India's Mental Healthcare Act 2017, raised inside the write that shows the gap
(a plan of an MHCA facility's discharge, a RelatedPerson, an advance directive or a capacity
assessment of its patient) and ended by the write that closes it. Flags on the Patient, coded with
the monitors' code system, labelled like the plan:

- ``nominated-representative``: the patient has no nominated representative. The text proposes the
  first available person in the order of s14(4) (``privacy.propose_representative``) and names the
  others; a case manager confirms one (``$confirm-nominated-representative``). The gateway
  appoints no one. With no one available it says to apply to the Board (s14(4)(d)–(e)).
- ``discharge-planning``: the plan records no participation of someone s98 names
  (``privacy.discharge_planning_gaps``), until ``CarePlan.contributor`` does.
- ``advance-directive``: an activity of the plan goes against an advance directive that may apply
  (``privacy.directive_findings``; never emergency treatment), or a directive cannot be read by the
  gateway: for the psychiatrist's decision. The activity stays; the work item ends when the
  activity or the directive does, when the patient is assessed as having capacity, or when the
  psychiatrist closes the Flag.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.monitors._alerts import Alert
from fhir_gateway.monitors._codes import (
    ADVANCE_DIRECTIVE,
    DISCHARGE_PLANNING,
    REPRESENTATIVE_PROPOSED,
)
from fhir_gateway.monitors._fhir import labels_of, read, ref, search
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.monitors._workitems import _settings
from fhir_gateway.monitors._workitems import end_work_item as end_item
from fhir_gateway.monitors._workitems import raise_work_item as raise_item
from fhir_gateway.services.mhca import ActFacts, act_facts
from fhir_gateway.store.referrers import may_refer
from fhir_gateway.store.repository import StoredResource

__all__ = ["on_careplan", "on_related_person", "on_consent", "on_observation", "review"]

_LIVE_PLAN = "draft,active,on-hold"
_ENDED_REQUEST = frozenset({"revoked", "entered-in-error", "completed"})


def _content(
    event: WriteEvent, stored: StoredResource | None
) -> tuple[dict[str, Any], dict[str, Any]]:
    before = event.before.content if event.before is not None and not event.before.deleted else {}
    after = stored.content if stored is not None and not stored.deleted else {}
    return before, after


def on_careplan(event: WriteEvent, stored: StoredResource | None) -> None:
    _, plan = _content(event, stored)
    if privacy.is_mhca(plan) and ref(plan, "subject"):
        review(event.session, ref(plan, "subject") or "")


def on_related_person(event: WriteEvent, stored: StoredResource | None) -> None:
    """A relative recorded, changed or confirmed: the proposal and the s98 gaps follow (nothing
    to do for a patient without a live MHCA plan)."""
    before, after = _content(event, stored)
    review(event.session, ref(after or before, "patient") or "")


def on_consent(event: WriteEvent, stored: StoredResource | None) -> None:
    before, after = _content(event, stored)
    if any(privacy.is_advance_directive(c) for c in (before, after) if c):
        review(event.session, ref(after or before, "patient") or "")


def on_observation(event: WriteEvent, stored: StoredResource | None) -> None:
    _, after = _content(event, stored)
    if privacy.has_capacity([after]) is not None:
        review(event.session, ref(after, "subject") or "")


def review(session: Session, patient: str) -> None:
    """Raise or end the Act's work items of one patient's live MHCA plans."""
    if not patient.startswith("Patient/"):
        return
    if not may_refer(session, ("CarePlan",), "subject", patient):
        return  # no plan names the patient (most relatives are written before any): no search
    plans = [
        p
        for p in search(session, "CarePlan", [("subject", patient), ("status", _LIVE_PLAN)])
        if privacy.is_mhca(p)
    ]
    if not plans:
        return
    facts = act_facts(session, patient, clock.now())
    _representative(session, facts, plans[0])
    for plan in plans:
        _discharge_planning(session, facts, plan)
        _directives(session, facts, plan)


def _alert(
    code: str, facts: ActFacts, plan: dict[str, Any], text: str, details: list[str], **kw: Any
) -> Alert:
    return Alert(
        codes=[code],
        patient=facts.patient,
        text=text,
        priority=kw.get("priority", "PM"),
        category=kw.get("category", "admin"),
        details=details,
        encounter=ref(plan, "encounter"),
        labels=labels_of(plan),
    )


def _representative(session: Session, facts: ActFacts, plan: dict[str, Any]) -> None:
    flag_id = monitor_id(REPRESENTATIVE_PROPOSED, facts.patient)
    patient = read(session, facts.patient) or {}
    named = privacy.representatives_named(facts.directives, facts.at)
    first, candidates = privacy.propose_representative(
        facts.related_persons,
        named,
        patient_birth_date=patient.get("birthDate"),
        on=facts.at.date(),
    )
    if facts.representative is not None:
        end_item(session, flag_id)
        return
    if first is None:
        text = (
            "No nominated representative is recorded for this patient and no relative or "
            "care-giver is available (Mental Healthcare Act 2017, s14(4)): apply to the Mental "
            "Health Review Board, which appoints a suitable person or the Director of the "
            "Department of Social Welfare (s14(4)(d)-(e))."
        )
        details = [f"CarePlan/{plan['id']}"]
    else:
        others = "; ".join(f"{c.why} ({c.basis})" for c in candidates[1:]) or "no one else"
        person_id = first.person.removeprefix("RelatedPerson/")
        text = (
            "No nominated representative is recorded for this patient (Mental Healthcare Act "
            f"2017, s14). Proposed for confirmation, the first available in the Act's order: "
            f"{first.why} ({first.basis}). Ask whether they are willing and able (s14(3)), then "
            f"confirm with POST /RelatedPerson/{person_id}/$confirm-nominated-representative; the "
            f"gateway appoints no one. Next in order: {others}."
        )
        details = [first.person, f"CarePlan/{plan['id']}"]
    raise_item(
        session,
        flag_id,
        _alert(REPRESENTATIVE_PROPOSED, facts, plan, text, details),
        _settings(session).referral_requester,
    )


def _discharge_planning(session: Session, facts: ActFacts, plan: dict[str, Any]) -> None:
    plan_ref = f"CarePlan/{plan['id']}"
    flag_id = monitor_id(DISCHARGE_PLANNING, plan_ref)
    gaps = privacy.discharge_planning_gaps(
        plan, facts.related_persons, case_manager=_settings(session).case_manager
    )
    if not gaps:
        end_item(session, flag_id)
        return
    text = (
        f"The discharge plan {plan_ref} records no participation of {'; '.join(gaps)}. Under the "
        "Mental Healthcare Act 2017, s98, the psychiatrist consults them and the plan is made "
        "with them: consult them and record who took part (CarePlan.contributor)."
    )
    raise_item(
        session,
        flag_id,
        _alert(DISCHARGE_PLANNING, facts, plan, text, [plan_ref]),
        _settings(session).referral_requester,
    )


def _directives(session: Session, facts: ActFacts, plan: dict[str, Any]) -> None:
    plan_ref = f"CarePlan/{plan['id']}"
    directive_refs = [f"{d['resourceType']}/{d['id']}" for d in facts.directives]
    for activity in plan.get("activity") or []:
        request_ref = (activity.get("reference") or {}).get("reference") or ""
        request = read(session, request_ref) if request_ref.startswith("ServiceRequest/") else None
        live = request is not None and request.get("status") not in _ENDED_REQUEST
        findings = (
            privacy.directive_findings(
                facts.directives, request, capacity=facts.capacity, at=facts.at
            )
            if live and request is not None
            else []
        )
        _settle(
            session, facts, plan, request_ref, directive_refs, {f.directive: f for f in findings}
        )
    unread = privacy.unreadable_directives(facts.directives, capacity=facts.capacity, at=facts.at)
    _settle(session, facts, plan, plan_ref, directive_refs, {f.directive: f for f in unread})


def _settle(
    session: Session,
    facts: ActFacts,
    plan: dict[str, Any],
    subject: str,
    directives: list[str],
    findings: dict[str, privacy.DirectiveFinding],
) -> None:
    """One work item per (activity or plan, directive): raised while found, ended otherwise."""
    for directive in directives:
        flag_id = monitor_id(ADVANCE_DIRECTIVE, subject, directive)
        finding = findings.get(directive)
        if finding is None:
            end_item(session, flag_id)
            continue
        alert = _alert(
            ADVANCE_DIRECTIVE,
            facts,
            plan,
            finding.text,
            [subject, directive],
            category="advance-directive",
            priority="PH",
        )
        raise_item(session, flag_id, alert, _settings(session).referral_requester)
