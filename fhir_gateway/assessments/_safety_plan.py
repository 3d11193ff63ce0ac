"""A completed safety-plan response becomes the patient's safety plan: a CarePlan of its own.

    install(rules, settings)  # app.build_rules: the check and the consequence on QuestionnaireResponse

When a QuestionnaireResponse to the safety-plan Questionnaire is stored ``completed`` (or
``amended``), in the same transaction and with the writer's rights:

* the patient's safety-plan CarePlan (category ``safety-plan``; one per patient, a stable id) is
  created, or a new version of it is written: ``basedOn`` and ``partOf`` the patient's active
  discharge plan, ``supportingInfo`` the response, its text the plan in the patient's words;
  labelled PSY (mental-health data) and with the labels of the response;
* an open safety-plan review Task of the patient (``_safety_plan_review``) is completed.

A response that cannot be kept as a plan (a section the Questionnaire does not have, too many
entries, an answer too long) is refused with the reason before anything is stored.
"""

from __future__ import annotations

import hashlib
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import hooks, privacy
from fhir_gateway.assessments._safety_plan_form import (
    QUESTIONNAIRE_URL,
    SAFETY_PLAN_SYSTEM,
    Section,
    is_safety_plan,
    problems,
    response_of,
    sections_of,
    shipped_questionnaire,
)
from fhir_gateway.assessments._safety_plan_review import (
    OPEN,
    complete,
    complete_reviews,
    done_before,
    is_review,
)
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.errors import BusinessRule, Forbidden, Gone, Issue, NotFound
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import resources as svc
from fhir_gateway.services.lookup import read as read_as_gateway
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids

__all__ = [
    "SAFETY_PLAN_CATEGORY",
    "install",
    "plan_id",
    "questionnaire_of",
    "safety_plan_of",
    "build_plan",
    "discharge_plan_of",
]

SAFETY_PLAN_CATEGORY: dict[str, Any] = {
    "coding": [
        {"system": SAFETY_PLAN_SYSTEM, "code": "safety-plan", "display": "Safety plan"},
        {
            "system": "http://snomed.info/sct",
            "code": "718347000",
            "display": "Mental health care plan (record artifact)",
        },
    ],
    "text": "Safety plan",
}
_KEPT = frozenset({"completed", "amended"})
_PLAN_SEARCH_LIMIT = 20  # a patient's plans; the newest active discharge plan is wanted


def plan_id(patient: str) -> str:
    """The one safety-plan CarePlan id of ``Patient/ID``: stable, so that two responses written at
    once make two versions of one plan (the primary key), never two plans."""
    return "safety-plan-" + hashlib.sha256(patient.encode()).hexdigest()[:24]


def questionnaire_of(session: Session) -> dict[str, Any]:
    """The stored safety-plan Questionnaire (the user's edits), else the shipped one."""
    ids = match_ids(session, "Questionnaire", [("url", QUESTIONNAIRE_URL)], caller=SYSTEM, limit=1)
    stored = read_as_gateway(session, f"Questionnaire/{ids[0]}") if ids else None
    return stored or shipped_questionnaire()


def safety_plan_of(session: Session, caller: Caller, patient: str) -> StoredResource | None:
    """The patient's safety plan as ``caller`` may see it (None: none, or hidden from it)."""
    try:
        return svc.read_served(session, "CarePlan", plan_id(patient), caller)
    except (NotFound, Gone, Forbidden):  # none, hidden from this caller, or withdrawn: no plan
        return None


def discharge_plan_of(session: Session, caller: Caller, patient: str) -> dict[str, Any] | None:
    """The patient's newest active care plan that is not the safety plan, as ``caller`` sees it."""
    ids = match_ids(
        session,
        "CarePlan",
        [("subject", patient), ("status", "active"), ("_sort", "-_lastUpdated")],
        caller=caller,
        limit=_PLAN_SEARCH_LIMIT,
    )
    for stored in repo.read_many(session, "CarePlan", ids):
        if not stored.deleted and not _is_safety_plan(stored.content):
            return stored.content
    return None


def _is_safety_plan(plan: dict[str, Any]) -> bool:
    return any(
        c.get("system") == SAFETY_PLAN_SYSTEM and c.get("code") == "safety-plan"
        for concept in plan.get("category") or []
        for c in concept.get("coding") or []
    )


def _narrative(sections: list[Section]) -> str:
    parts = ['<div xmlns="http://www.w3.org/1999/xhtml"><h2>Safety plan</h2>']
    for section in sections:
        heading = f"{section.step}: {section.title}" if section.step else section.title
        parts.append(f"<h3>{escape(heading)}</h3>")
        if not section.entries:
            parts.append("<p>(nothing written yet)</p>")
            continue
        parts.append("<ul>")
        for entry in section.entries:
            phone = f" (phone {escape(entry.phone)})" if entry.phone else ""
            parts.append(f"<li>{escape(entry.text)}{phone}</li>")
        parts.append("</ul>")
    parts.append("</div>")
    return "".join(parts)


def build_plan(
    response: dict[str, Any],
    questionnaire: dict[str, Any],
    patient: str,
    discharge_plan: dict[str, Any] | None,
) -> dict[str, Any]:
    """The safety-plan CarePlan for this response (pure)."""
    sections = sections_of(response, questionnaire)
    plan: dict[str, Any] = {
        "resourceType": "CarePlan",
        "id": plan_id(patient),
        "meta": {"security": privacy.merge_labels(privacy.labels_of(response), [privacy.PSY])},
        "text": {"status": "generated", "div": _narrative(sections)},
        "status": "active",
        "intent": "plan",
        "category": [SAFETY_PLAN_CATEGORY],
        "title": "Safety plan",
        "description": "The patient's own safety plan: warning signs, coping, people and places, "
        "people to ask for help, professionals and crisis lines, and making the environment safe.",
        "subject": {"reference": patient},
        "supportingInfo": [{"reference": f"QuestionnaireResponse/{response['id']}"}],
    }
    if response.get("authored"):
        plan["period"] = {"start": response["authored"]}
        plan["created"] = response["authored"]
    if response.get("author"):
        plan["author"] = response["author"]
    if discharge_plan is not None:
        link = {"reference": f"CarePlan/{discharge_plan['id']}"}
        plan["basedOn"], plan["partOf"] = [link], [link]
    return plan


def _check(event: WriteEvent) -> list[Issue] | None:
    """Label a safety-plan response PSY (mental-health data, like the plan made from it) and
    refuse a completed one that could not be printed whole, before storing (mutates the doc)."""
    doc = event.after
    if doc is None or not is_safety_plan(doc):
        return None
    labels = privacy.merge_labels(privacy.labels_of(doc), [privacy.PSY])
    doc["meta"] = {**(doc.get("meta") or {}), "security": labels}
    if doc.get("status") not in _KEPT:
        return None
    found = problems(doc, questionnaire_of(event.session))
    if not Reference.id_of((doc.get("subject") or {}).get("reference"), "Patient"):
        found.append("A completed safety plan needs its patient (subject: Patient/ID).")
    if found:
        raise BusinessRule(" ".join(found), expression=["QuestionnaireResponse.item"])
    return None


def _kept(event: WriteEvent, stored: StoredResource | None) -> None:
    """The completed response's plan, written with the writer's rights, and the review done."""
    if stored is None or stored.deleted or not is_safety_plan(stored.content):
        return
    response = stored.content
    if response.get("status") not in _KEPT:
        return
    session, caller = event.session, event.caller
    patient = f"Patient/{Reference.id_of(response['subject']['reference'], 'Patient')}"
    plan = build_plan(
        response,
        questionnaire_of(session),
        patient,
        discharge_plan_of(session, caller, patient),
    )
    current = repo.read(session, "CarePlan", plan["id"])
    if current is not None and not current.deleted and current.content.get("created"):
        plan["created"] = current.content["created"]  # when the plan was first made
    try:
        written = svc.update(session, "CarePlan", plan["id"], plan, caller).stored
    except Forbidden as exc:
        raise Forbidden(
            "A completed safety plan is kept as the patient's safety-plan CarePlan, which you may "
            f"not write ({exc.message}); save it as in-progress, or ask the case manager."
        ) from exc
    if written is not None:
        complete_reviews(session, patient, f"CarePlan/{written.res_id}", response["id"])


def _released(written: list[hooks.Written]) -> None:
    """Review Tasks released (from draft, or created open) after the plan was made: done. A batch
    of Tasks (a discharge plan's) reads each patient's safety plan once."""
    plans: dict[str, dict[str, Any] | None] = {}
    for event, stored in written:
        if stored is None or stored.deleted or stored.content.get("status") not in OPEN:
            continue
        before = event.before.content.get("status") if event.before is not None else None
        task = stored.content
        patient = str((task.get("for") or {}).get("reference") or "")
        if before not in (None, "draft") or not patient.startswith("Patient/"):
            continue
        if patient not in plans:
            plans[patient] = read_as_gateway(event.session, f"CarePlan/{plan_id(patient)}")
        plan = plans[patient]
        if plan is None or plan.get("status") != "active" or not done_before(plan, task):
            continue
        if is_review(event.session, task):
            response = (response_of(plan) or "").removeprefix("QuestionnaireResponse/")
            complete(event.session, task, f"CarePlan/{plan['id']}", response)
            plans.clear()  # what it wrote may touch the plans read


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the safety plan's rules."""
    del settings  # nothing configurable yet: the Questionnaire itself is the data to edit
    rules.before_write("QuestionnaireResponse", _check)
    rules.after_write("QuestionnaireResponse", _kept)
    rules.after_write_batch("Task", _released)
