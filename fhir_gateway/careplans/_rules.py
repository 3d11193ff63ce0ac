"""How the engine plugs into the gateway's writes (``install``, idempotent):

- the intake's discharge hook (``services.discharge``): a discharge makes its plan;
- an Encounter that leaves ``finished`` (an A13 cancel-discharge, or the same change through the
  API) revokes the plan of that discharge;
- a case manager approves a plan made in review mode by changing its CarePlan from ``draft`` to
  ``active`` (PUT, PATCH or a transaction entry): its proposed goals and care team become active,
  its draft ServiceRequests active and its draft Tasks ``requested`` (``priority`` urgent when the
  clinical deadline has already passed: they go out at once, the monitors flag them late), except
  a referral that needs the patient's consent to share with its partner (42 CFR Part 2) and has
  none: that Task stays ``draft``, its businessStatus "awaiting-consent";
- recording such a consent releases the Tasks waiting for it, once their plan is active; revoking
  it (or its expiry being recorded) withholds the referrals already sent to that partner
  (businessStatus "awaiting-consent": the row policy hides them from the partner meanwhile), and
  puts back to waiting those still in draft;
- a consent to the class of treating providers (the 2024 rule's TPO consent) reaches an owner
  the directory marks a treating provider (the referral is its treating relationship with the
  patient); housing, vocational and peer partners are reached only by a consent naming them.

Whether the patient's consents permit a partner is ``privacy.evaluate_consent``'s answer, the same
reading the row policy applies (nested denials, purposes, periods); a referral whose labels need
consent (ETH/42CFRPart2) waits for it even when its template does not say so.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, hooks
from fhir_gateway.careplans._context import DischargeEvent
from fhir_gateway.careplans._partners import directory
from fhir_gateway.careplans._render import AWAITING_CONSENT, is_late
from fhir_gateway.careplans._service import apply_discharge, revoke_for_cancelled_discharge
from fhir_gateway.careplans._store import is_engine_plan, own_requests, read, save, tasks_for
from fhir_gateway.careplans._templates import template_set
from fhir_gateway.context import SYSTEM
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.privacy import consents_of, evaluate_consent, labels_of, needs_consent
from fhir_gateway.services import discharge
from fhir_gateway.settings import Settings
from fhir_gateway.store import repository as repo
from fhir_gateway.store.repository import StoredResource
from fhir_gateway.store.search import match_ids

__all__ = ["install", "approve", "follow_consents", "send_or_hold"]

_EXT_CONSENT = "http://fhir-gateway.org/fhir/StructureDefinition/requires-consent"


def install(rules: hooks.Rules, settings: Settings | None = None) -> None:
    """Register the engine's hooks (they read the app's settings from the session)."""
    del settings
    rules.on_discharge(_on_discharge)
    rules.after_write("Encounter", _on_encounter)
    rules.after_write("CarePlan", _on_careplan)
    rules.after_write("Consent", _on_consent)


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


def _on_discharge(session: Session, context: discharge.DetectedDischarge) -> None:
    event = DischargeEvent(context.encounter, sender=context.sender, zone=context.zone)
    apply_discharge(session, event, _settings(session))


def _on_encounter(event: WriteEvent, stored: StoredResource | None) -> None:
    before = event.before.content if event.before is not None else {}
    after = stored.content if stored is not None and not stored.deleted else {}
    if before.get("status") == "finished" and after.get("status") != "finished":
        revoke_for_cancelled_discharge(
            event.session, DischargeEvent(f"Encounter/{before['id']}"), _settings(event.session)
        )


def _on_careplan(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted or event.before is None:
        return
    plan = stored.content
    if (
        event.before.content.get("status") == "draft"
        and plan.get("status") == "active"
        and is_engine_plan(plan)
    ):
        approve(event.session, plan)


def _on_consent(event: WriteEvent, stored: StoredResource | None) -> None:
    live = stored is not None and not stored.deleted
    consent = (
        stored.content
        if live and stored is not None
        else (event.before.content if event.before else {})
    )
    patient = (consent.get("patient") or {}).get("reference")
    if patient:
        follow_consents(event.session, patient)


def follow_consents(session: Session, patient: str) -> None:
    """After a change to the patient's Consents: release the Tasks waiting for a consent their
    owner now has, and withhold (businessStatus awaiting-consent) the gated ones already sent to
    an owner the consents no longer permit (revoked, expired, denied) until they do again."""
    consents = consents_of(session, patient)
    params = [("patient", patient), ("status", "draft,requested,accepted,in-progress,on-hold")]
    for task_id in match_ids(session, "Task", params, caller=SYSTEM):
        stored = repo.read(session, "Task", task_id)
        if stored is None or stored.deleted:
            continue
        task = stored.content
        permitted = _permitted(session, consents, patient, task)
        if task.get("status") == "draft":
            if _waiting(task) and permitted and _plan_active(session, task):
                save(session, _released(task))
        elif _waiting(task) and permitted:
            save(session, {k: v for k, v in task.items() if k != "businessStatus"})
        elif not _waiting(task) and not permitted and _gated(session, task):
            save(session, {**task, "businessStatus": AWAITING_CONSENT})


def _gated(session: Session, task: dict[str, Any]) -> bool:
    """Does the referral need the patient's consent to go to its owner?"""
    request = read(session, (task.get("focus") or {}).get("reference")) or {}
    return needs_consent(labels_of(task)) or _requires_consent(session, request)


def _permitted(
    session: Session, consents: list[dict[str, Any]], patient: str, task: dict[str, Any]
) -> bool:
    """The Task's owner permitted for Part 2 data now: what the row policy's grants say (the
    referral being its treating relationship with the patient)."""
    owner = _owner(task)
    if owner is None:
        return False
    recipient = directory(session).recipient(owner)
    return evaluate_consent(
        consents, patient=patient, recipient=recipient, at=clock.now()
    ).permitted


def approve(session: Session, plan: dict[str, Any]) -> None:
    patient = (plan.get("subject") or {}).get("reference", "")
    consents = consents_of(session, patient)
    for goal_ref in plan.get("goal", []):
        _promote(session, goal_ref.get("reference"), "lifecycleStatus", "proposed", "active")
    for team_ref in plan.get("careTeam", []):
        _promote(session, team_ref.get("reference"), "status", "proposed", "active")
    for ref in own_requests(session, plan):
        _promote(session, ref, "status", "draft", "active")
        for task in tasks_for(session, ref):
            if task.get("status") != "draft":
                continue
            if (_waiting(task) or _gated(session, task)) and not _permitted(
                session, consents, patient, task
            ):
                save(session, {**task, "businessStatus": AWAITING_CONSENT})
            else:
                save(session, _released(task))


def send_or_hold(session: Session, task: dict[str, Any]) -> dict[str, Any]:
    """A referral Task of an active plan given its owner by hand, as approval would send it:
    requested (urgent when late) when it may go to that owner; else held for the patient's
    consent (a draft stays draft, a requested one is withheld: businessStatus awaiting-consent)."""
    patient = (task.get("for") or {}).get("reference", "")
    held = (_waiting(task) or _gated(session, task)) and not _permitted(
        session, consents_of(session, patient), patient, task
    )
    if held:
        return {**task, "businessStatus": AWAITING_CONSENT}
    if task.get("status") == "draft":
        return _released(task)
    return {k: v for k, v in task.items() if k != "businessStatus"} if _waiting(task) else task


def _promote(
    session: Session, ref: str | None, field: str, old: str, new: str
) -> dict[str, Any] | None:
    doc = read(session, ref)
    if doc is not None and doc.get(field) == old:
        doc = {**doc, field: new}
        save(session, doc)
    return doc


def _released(task: dict[str, Any]) -> dict[str, Any]:
    doc = {k: v for k, v in task.items() if k != "businessStatus"}
    now = clock.now()
    if is_late(task, now):
        doc["priority"] = "urgent"
    return {**doc, "status": "requested", "lastModified": clock.to_instant(now)}


def _waiting(task: dict[str, Any]) -> bool:
    codes = {c.get("code") for c in (task.get("businessStatus") or {}).get("coding", [])}
    return "awaiting-consent" in codes


def _owner(task: dict[str, Any]) -> str | None:
    return (task.get("owner") or {}).get("reference")


def _requires_consent(session: Session, request: dict[str, Any]) -> bool:
    templates = template_set(session)
    for canonical in request.get("instantiatesCanonical", []):
        definition = templates.by_url.get(canonical.split("|", 1)[0]) or {}
        if any(
            e.get("url") == _EXT_CONSENT and e.get("valueBoolean")
            for e in definition.get("extension", [])
        ):
            return True
    return False


def _plan_active(session: Session, task: dict[str, Any]) -> bool:
    request = read(session, (task.get("focus") or {}).get("reference")) or {}
    plans = (read(session, b.get("reference")) for b in request.get("basedOn", []))
    return any(p is not None and p.get("status") == "active" for p in plans)
