"""Case-manager monitors: the gateway notices early so that case managers can prevent relapse.

- **Overdue referrals** (scheduled): a referral Task not accepted within ``monitor_ack_hours`` of
  becoming requested, or open past ``restriction.period.end``, gets the tag
  ``MONITOR_FLAGS|overdue`` (``Task?_tag=http://fhir-gateway.org/fhir/CodeSystem/monitor-flags|overdue``),
  a Flag on the Patient, a Communication to the care team and one to the owner; ``escalated``
  after ``monitor_escalate_hours`` more.
- **Readmission and crisis** (at the Encounter write, inside the intake's transaction): see
  ``_admissions``.
- **Work items** (at the referral Task write and the intake of each message, see ``_workitems``):
  ``unassigned`` (with the reason), ``late`` at sending, ``deadline-at-risk``, ``rerouted`` twice,
  ``no-encounter`` (an A01/A03 without PV1), ``unable-to-contact`` (a partner could not reach
  the patient); ``WORK_ITEMS`` lists their codes for the worklist.
- **India's Mental Healthcare Act 2017** (at the write of an MHCA plan, a RelatedPerson, an advance
  directive or a capacity assessment, see ``_mhca``): ``nominated-representative`` to confirm,
  ``discharge-planning`` without its s98 participants, ``advance-directive`` for the
  psychiatrist's decision.
- **FUH** (on demand): ``Measure/fuh/$evaluate-measure``, ``fhir-gateway report fuh``.
- **Family** (scheduled): education and appointment reminders to consenting family caregivers.

    install(settings)                  # once, by the composition root: the Encounter and Task hooks
    run_all(database, settings)        # every scheduled monitor, now
    run_due(database, settings)        # the same if due (shared schedule); what a worker calls
    database.read(fuh_summary, settings, date(2025, 3, 1), date(2025, 3, 31))
"""

from __future__ import annotations

from fhir_gateway import hooks
from fhir_gateway.monitors import _codes as codes  # the work-item codes, for the engines above
from fhir_gateway.monitors._admissions import on_encounter, withdraw
from fhir_gateway.monitors._alerts import Alert, care_team_of_plan, communication, flag
from fhir_gateway.monitors._codes import (
    ADHERENCE_UNKNOWN,
    CARING_CONTACT_REPLY,
    LOW_ADHERENCE,
    MISSED_INJECTION,
    MONITOR_FLAGS,
    REFILL_LATE,
    WORK_ITEMS,
    codesystem,
)
from fhir_gateway.monitors._codes import coding as flag_coding
from fhir_gateway.monitors._fhir import create_once, lock
from fhir_gateway.monitors._fuh import Outcome, evaluate
from fhir_gateway.monitors._ids import monitor_id
from fhir_gateway.monitors._measure import MEASURE_URL, measure, rates, summary_report
from fhir_gateway.monitors._mhca import on_careplan, on_consent, on_observation, on_related_person
from fhir_gateway.monitors._overdue import candidate_tasks, check_task, conditions
from fhir_gateway.monitors._report import (
    fuh_individual,
    fuh_outcomes,
    fuh_outcomes_for,
    fuh_summary,
    store_fuh_reports,
)
from fhir_gateway.monitors._schedule import (
    RunSummary,
    ScheduledJob,
    last_run,
    run_all,
    run_due,
    run_forever,
    seed,
)
from fhir_gateway.monitors._views import OverdueRow, alerts, overdue_referrals
from fhir_gateway.monitors._workitems import (
    end_work_item,
    on_message,
    on_requests,
    on_tasks,
    raise_work_item,
)
from fhir_gateway.settings import Settings

__all__ = [
    "Alert",
    "care_team_of_plan",
    "communication",
    "create_once",
    "flag",
    "lock",
    "monitor_id",
    "MEASURE_URL",
    "MONITOR_FLAGS",
    "WORK_ITEMS",
    "Outcome",
    "OverdueRow",
    "RunSummary",
    "ScheduledJob",
    "alerts",
    "candidate_tasks",
    "check_task",
    "codesystem",
    "conditions",
    "evaluate",
    "fuh_individual",
    "fuh_outcomes",
    "fuh_outcomes_for",
    "fuh_summary",
    "install",
    "last_run",
    "measure",
    "overdue_referrals",
    "rates",
    "run_all",
    "run_due",
    "run_forever",
    "seed",
    "store_fuh_reports",
    "summary_report",
    "withdraw",
]

# What the engines above the monitors (assessments, adherence, relapse, caring contacts) raise
# their work items with, as the monitors raise theirs.
__all__ += ["codes", "end_work_item", "flag_coding", "raise_work_item"]
__all__ += [
    "ADHERENCE_UNKNOWN",
    "CARING_CONTACT_REPLY",
    "LOW_ADHERENCE",
    "MISSED_INJECTION",
    "REFILL_LATE",
]


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the event-driven rules (they read the app's settings from the session)."""
    del settings
    rules.after_write("Encounter", on_encounter)
    rules.after_write_batch("Task", on_tasks)  # what a plan's Tasks read, read once for all
    rules.after_write_batch("ServiceRequest", on_requests)
    rules.after_write("CarePlan", on_careplan)  # the Mental Healthcare Act's work items
    rules.after_write("RelatedPerson", on_related_person)
    rules.after_write("Consent", on_consent)
    rules.after_write("Observation", on_observation)
    rules.on_message_applied(on_message)
