"""The shapes of what a monitor raises: a Flag on the Patient, a Communication to the care team,
and a Communication to a referral's owner (pushed to the owner's own FHIR server when it has one,
through the outbox; partners working in the gateway receive it through their Subscriptions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.monitors._codes import FLAG_DETAIL, FLAG_PRIORITY, MONITOR_FLAGS, coding, tag
from fhir_gateway.monitors._fhir import read, search
from fhir_gateway.store import outbox

__all__ = ["Alert", "flag", "communication", "care_team_of_plan", "push_to_owner", "FLAG_CATEGORY"]

FLAG_CATEGORY = "http://terminology.hl7.org/CodeSystem/flag-category"
_COMM_CATEGORY = "http://terminology.hl7.org/CodeSystem/communication-category"
_FLAG_PRIORITY_CS = "http://hl7.org/fhir/flag-priority-code"
_PRIORITY_DISPLAY = {"PL": "Low priority", "PM": "Medium priority", "PH": "High priority"}


@dataclass(slots=True)
class Alert:
    """One condition a monitor noticed, in words a case manager reads."""

    codes: list[str]  # monitor-flags codes, the first is the main one
    patient: str
    text: str
    priority: str  # Flag: PL | PM | PH; the Communication's priority follows (routine … stat)
    category: str  # flag-category: admin | safety | …
    details: list[str] = field(default_factory=list)  # references the alert is about
    encounter: str | None = None
    labels: list[dict[str, Any]] = field(default_factory=list)
    extensions: list[dict[str, Any]] = field(default_factory=list)


def _meta(alert: Alert) -> dict[str, Any]:
    meta: dict[str, Any] = {"tag": [tag(alert.codes[0])]}
    if alert.labels:
        meta["security"] = alert.labels
    return meta


def flag(flag_id: str, alert: Alert, author: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Flag",
        "id": flag_id,
        "meta": _meta(alert),
        "extension": [
            {
                "url": FLAG_PRIORITY,
                "valueCodeableConcept": {
                    "coding": [
                        {
                            "system": _FLAG_PRIORITY_CS,
                            "code": alert.priority,
                            "display": _PRIORITY_DISPLAY[alert.priority],
                        }
                    ]
                },
            },
            *({"url": FLAG_DETAIL, "valueReference": {"reference": r}} for r in alert.details),
            *alert.extensions,
        ],
        "status": "active",
        "category": [{"coding": [{"system": FLAG_CATEGORY, "code": alert.category}]}],
        "code": {"coding": [coding(c) for c in alert.codes], "text": alert.text},
        "subject": {"reference": alert.patient},
        "period": {"start": clock.to_instant(clock.now())},
        "author": {"reference": author},
    }
    if alert.encounter:
        doc["encounter"] = {"reference": alert.encounter}
    return doc


_COMM_PRIORITY = {"PL": "routine", "PM": "urgent", "PH": "stat"}


def communication(
    comm_id: str,
    alert: Alert,
    *,
    sender: str,
    recipients: list[str],
    about: list[str],
    priority: str | None = None,
) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "resourceType": "Communication",
        "id": comm_id,
        "meta": _meta(alert),
        "status": "completed",
        "category": [
            {"coding": [{"system": _COMM_CATEGORY, "code": "alert"}]},
            {"coding": [coding(c) for c in alert.codes]},
        ],
        "priority": priority or _COMM_PRIORITY[alert.priority],
        "subject": {"reference": alert.patient},
        "about": [{"reference": r} for r in about],
        "sent": clock.to_instant(clock.now()),
        "recipient": [{"reference": r} for r in recipients],
        "sender": {"reference": sender},
        "payload": [{"contentString": alert.text}],
    }
    if alert.encounter:
        doc["encounter"] = {"reference": alert.encounter}
    return doc


def care_team_of_plan(plan: dict[str, Any] | None, fallback: str) -> list[str]:
    """Who hears of an alert: the plan's care team(s), else the case manager."""
    teams = [t["reference"] for t in (plan or {}).get("careTeam", []) if t.get("reference")]
    return teams or [fallback]


def _endpoint_of(session: Session, organization: str) -> str | None:
    """The owner's own FHIR server, if the directory names one (the "direct" pattern).
    Gap: issue 6 has no public "notify a Task owner"; this mirrors its private endpoint lookup."""
    org = read(session, organization) or {}
    refs = [e.get("reference") for e in org.get("endpoint", [])]
    for service in search(session, "HealthcareService", [("organization", organization)]):
        refs += [e.get("reference") for e in service.get("endpoint", [])]
    for endpoint in (read(session, r) for r in dict.fromkeys(r for r in refs if r)):
        code = ((endpoint or {}).get("connectionType") or {}).get("code")
        if (
            endpoint
            and endpoint.get("status") == "active"
            and code == "hl7-fhir-rest"
            and endpoint.get("address")
        ):
            return str(endpoint["address"]).rstrip("/")
    return None


def push_to_owner(session: Session, owner: str, task: dict[str, Any], base_url: str) -> int | None:
    """Queue the tagged Task (and its ServiceRequest) for the owner's own FHIR server, in the
    caller's transaction, as issue 6 pushes referrals; None when the owner works in the gateway
    itself (it sees the tag when it polls or through its Subscription). The owner's copy is what
    it may read here (a partner's rights do not include Communications)."""
    from fhir_gateway import security
    from fhir_gateway.workflow import push_bundle

    endpoint = _endpoint_of(session, owner)
    if endpoint is None:
        return None
    viewer = security.partner_caller(owner)
    request = read(session, (task.get("focus") or {}).get("reference"))
    shown_task = security.redact_for(session, viewer, task)
    shown_request = security.redact_for(session, viewer, request) if request else None
    if shown_task is None or shown_request is None:
        security.take_disclosures(session)  # nothing goes: nothing disclosed
        return None
    bundle = push_bundle(shown_task, shown_request, base_url)
    tags = [t for t in (task.get("meta") or {}).get("tag", []) if t.get("system") == MONITOR_FLAGS]
    for entry in bundle["entry"]:
        if entry["resource"]["resourceType"] == "Task" and tags:
            entry["resource"]["meta"] = {
                **entry["resource"].get("meta", {}),
                "tag": tags,
            }  # the flag is the news
    return outbox.enqueue(
        session,
        channel="partner-push",
        method="POST",
        url=endpoint,
        body=orjson.dumps(bundle),
        content_type="application/fhir+json",
        focus=f"Task/{task['id']}/_history/{(task.get('meta') or {}).get('versionId', '')}",
        disclosures=security.take_disclosures(session),
    )
