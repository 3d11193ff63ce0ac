"""The care-plan engine: a discharge becomes a continuum-of-care plan every party can act on.

Inbound → store → outbound:

    DischargeEvent (from the intake)          templates (PlanDefinition/ActivityDefinition, stored)
            └── load_context ──► DischargeContext ──► draft_plan (FHIRPath, pure) ──► PlanDraft
                                                   partners (directory) ─┘                │
                              render: CarePlan, Goals, ServiceRequests, Tasks, CareTeam ◄─┘
                 stored as separate resources (apply_discharge)  |  contained ($apply)

What the intake calls, inside its transaction, after applying the converted Bundle:

    apply_discharge(session, DischargeEvent("Encounter/1", sender="EPIC|STMARYS", zone="America/Chicago"), settings)
    revoke_for_cancelled_discharge(session, DischargeEvent("Encounter/1"), settings)   # A13

``install(rules, settings)`` plugs both into an app's rules (``app.build_rules``): the
``discharge`` hook point calls ``apply_discharge``; a write that
takes a finished Encounter back to another status (an A13, or the same through the API) calls
``revoke_for_cancelled_discharge``; a CarePlan approved through the API and a Consent recorded
release referrals (``after_write`` rules, ``fhir_gateway.hooks``). ``seed`` stores the shipped templates and
partner directory. The plan of an MHCA facility's discharge (India's Mental Healthcare Act 2017)
gets what the Act adds (``_mhca``: label, nominated representative and preferred contacts in the
care team, advance-directive notes).
"""

from __future__ import annotations

from fhir_gateway.careplans._cache import StoredDataCache, forget_stored_data
from fhir_gateway.careplans._context import (
    DischargeContext,
    DischargeEvent,
    DraftedPlan,
    load_context,
)
from fhir_gateway.careplans._events import discharged_encounters
from fhir_gateway.careplans._fhirpath import TemplateError
from fhir_gateway.careplans._operation import (
    ApplyParameters,
    apply_plan_definition,
    parameters_from_query,
    parameters_from_resource,
)
from fhir_gateway.careplans._partners import (
    Partner,
    directory,
    eligibility,
    eligible,
    no_partner_reason,
    patient_address,
    patient_language,
)
from fhir_gateway.careplans._planner import PlanDraft, draft_plan
from fhir_gateway.careplans._render import UNASSIGNED_NOTE
from fhir_gateway.careplans._review import (
    NewActivity,
    TemplateChoice,
    new_activity,
    plan_key_of,
    template_choices,
)
from fhir_gateway.careplans._rules import install, send_or_hold
from fhir_gateway.careplans._seed import seed
from fhir_gateway.careplans._service import (
    PlanResult,
    apply_discharge,
    revoke_for_cancelled_discharge,
)
from fhir_gateway.careplans._store import activity_requests, plans_of_encounter, tasks_for
from fhir_gateway.careplans._templates import template_set
from fhir_gateway.careplans._timing import window

on_discharge = apply_discharge
on_discharge_cancelled = revoke_for_cancelled_discharge

__all__ = [
    "ApplyParameters",
    "NewActivity",
    "TemplateChoice",
    "DischargeContext",
    "DischargeEvent",
    "DraftedPlan",
    "Partner",
    "PlanDraft",
    "PlanResult",
    "StoredDataCache",
    "TemplateError",
    "apply_discharge",
    "apply_plan_definition",
    "directory",
    "discharged_encounters",
    "draft_plan",
    "eligibility",
    "eligible",
    "forget_stored_data",
    "install",
    "load_context",
    "on_discharge",
    "on_discharge_cancelled",
    "parameters_from_query",
    "parameters_from_resource",
    "revoke_for_cancelled_discharge",
    "seed",
    "template_set",
    "activity_requests",
    "patient_address",
    "patient_language",
    "no_partner_reason",
    "UNASSIGNED_NOTE",
    "plans_of_encounter",
    "new_activity",
    "plan_key_of",
    "send_or_hold",
    "template_choices",
    "tasks_for",
    "window",
]
