"""Where measurement-based care rides on the gateway's writes (``install_measurement``):

* a care plan the engine drafts on a discharge → its measurement Tasks, stored with it (the
  ``plan`` rule ``_on_plan``: one write, one version of the plan);
* a plan approved (draft → active) → its draft measurement Tasks requested; a plan withdrawn
  (revoked, entered-in-error) → its open measurement Tasks cancelled (a completed plan keeps them);
* a partner that owns a measurement changes only its status and outcome (``check_measurement_task``);
* a QuestionnaireResponse → the measurement Task it answers completed (``_completion``);
* a PHQ-9 or GAD-7 total Observation → response and remission (``_trend``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from fhir_gateway import careplans, clock, hooks
from fhir_gateway.assessments._completion import on_response
from fhir_gateway.assessments._schedule import (
    OPEN,
    is_measurement,
    measurement_tasks_of,
    plan_measurements,
)
from fhir_gateway.assessments._trend import on_observation
from fhir_gateway.errors import Forbidden, Issue
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.store.repository import StoredResource

__all__ = ["install_measurement", "check_measurement_task"]

# a plan withdrawn ends its measurements; one completed (every referral done) keeps them: the
# measurements follow the patient beyond the referrals
_ENDED = frozenset({"revoked", "entered-in-error"})
# what the partner that owns a measurement may change, as the owner of a referral may
_OWNER_FIELDS = frozenset({"status", "statusReason", "businessStatus", "output", "lastModified"})


def install_measurement(rules: hooks.Rules) -> None:
    """Register the rules (after the care-plan engine's, which they follow)."""
    rules.on_plan(_on_plan)
    rules.before_write("Task", check_measurement_task)
    rules.after_write("CarePlan", _on_careplan)
    rules.after_write("QuestionnaireResponse", on_response)
    rules.after_write("Observation", on_observation)


def check_measurement_task(event: WriteEvent) -> list[Issue] | None:
    """A partner that owns a measurement Task may change only its status and outcome, never
    whom or what it is about (the referral owners' rule)."""
    before = event.before.content if event.before is not None else None
    if event.caller.role != "partner" or before is None or not is_measurement(before):
        return None
    after = event.after or {}
    changed = {
        k
        for k in set(before) | set(after)
        if k not in _OWNER_FIELDS and k != "meta" and before.get(k) != after.get(k)
    }
    if changed:
        raise Forbidden(
            "The owner of a measurement may change only its status, status reason, business "
            f"status and output, not: {', '.join(sorted(changed))}"
        )
    return None


def _zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return ZoneInfo("UTC")


def _discharged(encounter: dict[str, Any]) -> datetime:
    """When the stay ended (``period.end``), else now (a discharge without an end time)."""
    end = (encounter.get("period") or {}).get("end")
    try:
        value = datetime.fromisoformat(str(end).replace("Z", "+00:00")) if end else None
    except ValueError:
        value = None
    return value if value is not None and value.tzinfo else clock.now()


def _on_plan(session: Session, drafted: careplans.DraftedPlan) -> list[dict[str, Any]]:
    if drafted.plan.get("status") not in ("draft", "active"):
        return []
    discharged, zone = _discharged(drafted.encounter), _zone(drafted.zone or "UTC")
    return plan_measurements(session, drafted.plan, discharged, zone, drafted.resources)


def _on_careplan(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted or event.before is None:
        return
    was, now = event.before.content.get("status"), stored.content.get("status")
    if was == now:
        return
    changed = []
    for task in measurement_tasks_of(event.session, stored.content):
        if now == "active" and task.get("status") == "draft":
            changed.append({**task, "status": "requested"})
        elif now in _ENDED and task.get("status") in OPEN:
            changed.append({**task, "status": "cancelled"})
    # stored together: one write, their rules once; stored Tasks, only their status changed
    lookup.save_all(event.session, changed, restated=True)
