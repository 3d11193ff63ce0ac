"""Family: when a care team (active: the plan was approved) holds a RelatedPerson and the patient
has consented to share with that person (``privacy.evaluate_consent``: the RelatedPerson
permitted for care coordination, for data labelled like the plan, now), the family caregiver
receives, once each,

- family education about the plan (crisis signs, the 7-day follow-up, the crisis line of the
  facility's country: 988 in the US, Tele-MANAS in India), and
- a reminder of each booked Appointment of the patient starting within ``monitor_reminder_hours``,

each as a CommunicationRequest (what the case-management service asks to be communicated) and the
Communication that carries it (based on the request; Subscriptions deliver it to the family's
channel). Without consent nothing goes out, except to the nominated representative of a patient of
an MHCA facility, to whom the Mental Healthcare Act 2017 releases it (s23(2)(a),
``privacy.release_decision``). A message carries the labels of what it speaks of (the plan, the
Appointment whose description it repeats)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, privacy
from fhir_gateway.jurisdiction import IN, crisis_line
from fhir_gateway.monitors._codes import APPOINTMENT_REMINDER, FAMILY_EDUCATION, coding, tag
from fhir_gateway.monitors._days import parse
from fhir_gateway.monitors._fhir import create_once, labels_of, lock, read, ref, search
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.settings import Settings

__all__ = ["candidate_teams", "check_team", "consented"]

EDUCATION = (
    "Family education: your relative has a care plan after a psychiatric hospital stay. You can help by "
    "supporting the first follow-up visit within 7 days, encouraging the medication as prescribed, and watching "
    "for warning signs (talk of suicide, withdrawal, not sleeping, stopping medication). In a crisis {line}."
)


def education(settings: Settings, plan: dict[str, Any] | None) -> str:
    """The education text with the crisis line of the plan's country (an MHCA plan is India's)."""
    country = IN if plan is not None and privacy.is_mhca(plan) else settings.default_country
    return EDUCATION.format(line=crisis_line(country))


def candidate_teams(session: Session) -> list[str]:
    teams = search(session, "CareTeam", [("status", "active")])
    return [t["id"] for t in teams if _relatives(t)]


def _relatives(team: dict[str, Any]) -> list[str]:
    refs = ((p.get("member") or {}).get("reference", "") for p in team.get("participant", []))
    return [r for r in refs if r.startswith("RelatedPerson/")]


def consented(
    consents: list[dict[str, Any]],
    patient: str,
    person: str,
    labels: list[dict[str, Any]],
    at: datetime,
) -> bool:
    """May ``person`` hear about data so labelled (the privacy module's consent evaluation)?"""
    return privacy.evaluate_consent(
        consents, patient=patient, recipient=person, labels=labels, at=at
    ).permitted


def _plan_of(session: Session, team_id: str) -> dict[str, Any] | None:
    plans = search(
        session,
        "CarePlan",
        [("care-team", f"CareTeam/{team_id}"), ("status", "active,on-hold,draft")],
    )
    return plans[0] if plans else None


def check_team(session: Session, settings: Settings, team_id: str) -> int:
    """Send what is due to the consenting family of one care team; returns how many went out."""
    lock(session, "monitor", "CareTeam", team_id)
    team = read(session, f"CareTeam/{team_id}")
    patient = ref(team, "subject")
    if team is None or team.get("status") != "active" or not patient:
        return 0
    consents, now = privacy.consents_of(session, patient), clock.now()
    plan = _plan_of(session, team_id)
    representative = _representative(session, patient, plan)
    sent = 0
    for person in _relatives(team):
        if person == representative or consented(consents, patient, person, labels_of(plan), now):
            sent += _educate(session, settings, patient, person, plan, team_id)
        for appointment in _upcoming(session, settings, patient):
            if person == representative or consented(
                consents, patient, person, labels_of(plan, appointment), now
            ):
                sent += _remind(session, settings, patient, person, plan, appointment)
    return sent


def _representative(session: Session, patient: str, plan: dict[str, Any] | None) -> str | None:
    """The nominated representative of an MHCA plan's patient, to whom s23(2)(a) releases."""
    if plan is None or not privacy.is_mhca(plan):
        return None
    person = privacy.nominated_representative(
        search(session, "RelatedPerson", [("patient", patient)])
    )
    if person is None:
        return None
    decision = privacy.release_decision(
        recipient=person,
        resource=f"CarePlan/{plan['id']}",
        at=clock.now(),
        representative=person,
        care_team=(),
        releases=(),
    )
    return person if decision.permitted else None


def _upcoming(session: Session, settings: Settings, patient: str) -> list[dict[str, Any]]:
    now = clock.now()
    horizon = now + timedelta(hours=settings.monitor_reminder_hours)
    out = []
    for appointment in search(session, "Appointment", [("patient", patient), ("status", "booked")]):
        start = parse(appointment.get("start"), now.tzinfo)  # type: ignore[arg-type]
        if start is not None and now < start <= horizon:
            out.append(appointment)
    return out


def _educate(
    session: Session,
    settings: Settings,
    patient: str,
    person: str,
    plan: dict[str, Any] | None,
    team_id: str,
) -> int:
    about = [f"CarePlan/{plan['id']}"] if plan else [f"CareTeam/{team_id}"]
    key = (FAMILY_EDUCATION, f"CareTeam/{team_id}", person)
    text = education(settings, plan)
    return _send(session, settings, key, patient, person, text, about, labels_of(plan), None)


def _remind(
    session: Session,
    settings: Settings,
    patient: str,
    person: str,
    plan: dict[str, Any] | None,
    appointment: dict[str, Any],
) -> int:
    start = appointment["start"]
    what = appointment.get("description") or "an appointment"
    text = f"Appointment reminder: {what} on {start}. Please help your relative attend."
    key = (APPOINTMENT_REMINDER, f"Appointment/{appointment['id']}", person)
    return _send(
        session,
        settings,
        key,
        patient,
        person,
        text,
        [f"Appointment/{appointment['id']}"],
        labels_of(plan, appointment),
        start,
    )


def _send(
    session: Session,
    settings: Settings,
    key: tuple[str, str, str],
    patient: str,
    person: str,
    text: str,
    about: list[str],
    labels: list[dict[str, Any]],
    when: str | None,
) -> int:
    code = key[0]
    meta: dict[str, Any] = {"tag": [tag(code)], **({"security": labels} if labels else {})}
    now = clock.to_instant(clock.now())
    request: dict[str, Any] = {
        "resourceType": "CommunicationRequest",
        "id": monitor_id(*key, "request"),
        "meta": meta,
        "status": "completed",
        "category": [{"coding": [coding(code)]}],
        "priority": "routine",
        "subject": {"reference": patient},
        "about": [{"reference": r} for r in about],
        "payload": [{"contentString": text}],
        "authoredOn": now,
        "requester": {"reference": settings.case_manager},
        "recipient": [{"reference": person}],
        "sender": {"reference": settings.referral_requester},
    }
    if when:
        request["occurrenceDateTime"] = when
    if not create_once(session, request):
        return 0
    create_once(
        session,
        {
            "resourceType": "Communication",
            "id": monitor_id(*key, "communication"),
            "meta": meta,
            "basedOn": [{"reference": f"CommunicationRequest/{request['id']}"}],
            "status": "completed",
            "category": [{"coding": [coding(code)]}],
            "priority": "routine",
            "subject": {"reference": patient},
            "about": [{"reference": r} for r in about],
            "sent": now,
            "recipient": [{"reference": person}],
            "sender": {"reference": settings.referral_requester},
            "payload": [{"contentString": text}],
        },
    )
    return 1
