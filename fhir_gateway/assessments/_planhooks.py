"""How the plan rules ride on writes (``install_plan_rules``, idempotent; the latest settings win):

- an AHC-HRSN QuestionnaireResponse stored becomes SDOH Observations and health concerns
  (``_sdoh``; registered after the instruments' scoring, so ``app.install_rules`` calls this after
  ``assessments.install``);
- an Observation or a Condition stored (scored by the instruments, derived from an AHC-HRSN
  screening, or written by anyone) is matched against the stored rule PlanDefinitions and every
  rule it fires is applied in the same transaction (``_revise``);
- a rule PlanDefinition written through the API is compiled first: one that would not run is
  refused (422), so an edit cannot break the alerts of every later screening;
- a held activity approved by the case manager (its ServiceRequest draft → active) sends its
  referral Task as plan approval does (or waits for the patient's consent); one declined
  (revoked) cancels its draft Task; when the last held activity of a screening is decided, its
  ``plan-revision`` work item ends.

The rules are built once per stored version of the templates (``careplans.template_set`` is
rebuilt when any PlanDefinition or ActivityDefinition changes, through the API too).
"""

from __future__ import annotations

import threading
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock, hooks
from fhir_gateway.assessments._planrules import PlanRules, build_rules, is_rule_plan
from fhir_gateway.assessments._revise import REVISION_SYSTEM, apply_firing, held_flag_id
from fhir_gateway.assessments._sdoh import on_response
from fhir_gateway.errors import Issue
from fhir_gateway.hooks import WriteEvent, settings_of
from fhir_gateway.services import lookup
from fhir_gateway.settings import Settings
from fhir_gateway.store.repository import StoredResource

__all__ = ["install_plan_rules", "rules_of"]

RESULT_TYPES = ("Observation", "Condition")
_NOT_APPROVED = frozenset({"revoked", "entered-in-error"})
_built: dict[str, tuple[object, PlanRules]] = {}  # per database: (the template set, its rules)
_lock = threading.Lock()


def install_plan_rules(rules: hooks.Rules, settings: Settings | None = None) -> None:
    """Register the plan rules (they read the app's settings from the session)."""
    del settings
    rules.after_write("QuestionnaireResponse", on_response)  # after the scoring: AHC-HRSN → SDOH
    for res_type in RESULT_TYPES:
        rules.after_write(res_type, _on_result)
    rules.before_write("PlanDefinition", _check_rule_plan)
    rules.after_write("ServiceRequest", _on_request)


def _settings(session: Session) -> Settings:
    return settings_of(session)  # the app's, which its rules carry


def rules_of(session: Session) -> PlanRules:
    """The stored rules, compiled once per stored version of the templates."""
    templates = careplans.template_set(session)
    key = str(session.get_bind().engine.url)
    with _lock:
        cached = _built.get(key)
        if cached is not None and cached[0] is templates:
            return cached[1]
    plans = [d for ref, d in templates.by_ref.items() if ref.startswith("PlanDefinition/")]
    rules = build_rules(plans)
    with _lock:
        _built[key] = (templates, rules)
    return rules


def _on_result(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted:
        return  # a retracted result neither fires nor clears a rule
    rules = rules_of(event.session)
    if event.res_type not in rules.types:
        return
    for firing in rules.fired(stored.content):
        apply_firing(event.session, _settings(event.session), firing)


def _check_rule_plan(event: WriteEvent) -> list[Issue] | None:
    if event.after is not None and is_rule_plan(event.after):
        build_rules([{**event.after, "status": "active"}])  # raises TemplateError (422)
    return None


def _revision(request: dict[str, Any]) -> str | None:
    return next(
        (
            str(i.get("value"))
            for i in request.get("identifier", [])
            if i.get("system") == REVISION_SYSTEM and i.get("value")
        ),
        None,
    )


def _on_request(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted or event.before is None:
        return
    request, before = stored.content, event.before.content
    key = _revision(request)
    if key is None or before.get("status") != "draft" or request.get("status") == "draft":
        return
    for task in careplans.tasks_for(event.session, f"ServiceRequest/{request['id']}"):
        if task.get("status") != "draft":
            continue
        if request.get("status") == "active":  # approved: it goes out as plan approval sends
            lookup.save(event.session, careplans.send_or_hold(event.session, task))
        elif request.get("status") in _NOT_APPROVED:  # declined: its referral never goes out
            reason = {"text": "The case manager did not approve this activity."}
            lookup.save(event.session, {**task, "status": "cancelled", "statusReason": reason})
    _end_when_decided(event.session, key.split("#", 1)[0])


def _end_when_decided(session: Session, source: str) -> None:
    """The screening's work item ends once none of the activities it held is still a draft."""
    flag = lookup.read(session, f"Flag/{held_flag_id(source)}")
    if flag is None or flag.get("status") != "active":
        return
    held = [
        (e.get("valueReference") or {}).get("reference", "")
        for e in flag.get("extension", [])
        if str((e.get("valueReference") or {}).get("reference", "")).startswith("ServiceRequest/")
    ]
    if any((lookup.read(session, ref) or {}).get("status") == "draft" for ref in held):
        return
    period = {**flag.get("period", {}), "end": clock.to_instant(clock.now())}
    lookup.save(session, {**flag, "status": "inactive", "period": period})
