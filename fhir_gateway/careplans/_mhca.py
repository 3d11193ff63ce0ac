"""What India's Mental Healthcare Act 2017 adds to the plan of an MHCA facility's discharge (the
rules are ``fhir_gateway.privacy``'s; the work items they raise are the monitors'):

* every resource of the plan carries the Act's label (``MHCA2017``);
* the care team holds the confirmed nominated representative in that role (ss14–17), and the
  people the patient's advance directive asks to be contacted (preferred contacts);
* an activity that goes against an advance directive that may apply (s5(3); never to emergency
  treatment, s9) stays in the plan, with a progress note for the psychiatrist's decision (s10,
  s11); the monitors raise the work item.

Who took part in discharge planning (s98) is recorded later by a case manager
(``CarePlan.contributor``); the monitors flag the plan until it is.
"""

from __future__ import annotations

from typing import Any

from fhir_gateway import privacy
from fhir_gateway.careplans._render import Rendered
from fhir_gateway.services.mhca import ActFacts, representative_role

__all__ = ["DIRECTIVE_NOTE", "apply_act"]

DIRECTIVE_NOTE = "Advance directive: "
_CONTACT_ROLE = [{"coding": [privacy.mhca_coding("preferred-contact")]}]


def _labelled(doc: dict[str, Any]) -> dict[str, Any]:
    return privacy.with_labels(doc, [dict(privacy.MHCA)])


def _team(team: dict[str, Any], facts: ActFacts) -> dict[str, Any]:
    representative = facts.representative
    participants = []
    for p in team.get("participant") or []:
        if representative and (p.get("member") or {}).get("reference") == representative:
            p = {**p, "role": representative_role("confirmed")}
        participants.append(p)
    members = {(p.get("member") or {}).get("reference") for p in participants}
    participants += [
        {"role": _CONTACT_ROLE, "member": {"reference": ref}}
        for ref in privacy.preferred_contacts(facts.directives, facts.at)
        if ref not in members
    ]
    return {**team, "participant": participants}


def _notes(
    plan: dict[str, Any], requests: list[dict[str, Any]], facts: ActFacts, now: str
) -> dict[str, Any]:
    found = {
        f"ServiceRequest/{r['id']}": privacy.directive_findings(
            facts.directives, r, capacity=facts.capacity, at=facts.at
        )
        for r in requests
    }
    activities = []
    for activity in plan.get("activity") or []:
        ref = str((activity.get("reference") or {}).get("reference"))
        notes = [{"time": now, "text": DIRECTIVE_NOTE + f.text} for f in found.get(ref, [])]
        if notes:
            activity = {**activity, "progress": [*(activity.get("progress") or []), *notes]}
        activities.append(activity)
    return {**plan, "activity": activities}


def apply_act(rendered: Rendered, facts: ActFacts, now: str) -> None:
    """Make the rendered plan of an MHCA facility's discharge what the Act asks (in place)."""
    rendered.careteam = _labelled(_team(rendered.careteam, facts))
    rendered.careplan = _labelled(_notes(rendered.careplan, rendered.requests, facts, now))
    rendered.goals = [_labelled(g) for g in rendered.goals]
    rendered.requests = [_labelled(r) for r in rendered.requests]
    rendered.tasks = [_labelled(t) for t in rendered.tasks]
