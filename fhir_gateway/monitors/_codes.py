"""The gateway's own codes for what the monitors notice, as a FHIR CodeSystem.

``MONITOR_FLAGS`` (``http://fhir-gateway.org/fhir/CodeSystem/monitor-flags``, stable: clients
search on it) codes the ``meta.tag`` put on overdue referral Tasks (``Task?_tag=<system>|overdue``),
the Flags and Communications the monitors raise, and the family messages' categories. The monitor
run stores the CodeSystem as ``CodeSystem/monitor-flags``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "MONITOR_FLAGS",
    "OVERDUE",
    "UNACKNOWLEDGED",
    "PAST_DEADLINE",
    "ESCALATED",
    "READMISSION",
    "CRISIS",
    "WITHDRAWN",
    "FAMILY_EDUCATION",
    "APPOINTMENT_REMINDER",
    "FUH_7",
    "FUH_30",
    "UNASSIGNED",
    "LATE",
    "DEADLINE_AT_RISK",
    "REROUTED",
    "NO_ENCOUNTER",
    "REPRESENTATIVE_PROPOSED",
    "DISCHARGE_PLANNING",
    "ADVANCE_DIRECTIVE",
    "UNABLE_TO_CONTACT",
    "SUICIDE_RISK",
    "ASSESSMENT_INCOMPLETE",
    "CARING_CONTACT_REPLY",
    "LOW_ADHERENCE",
    "REFILL_LATE",
    "MISSED_INJECTION",
    "ADHERENCE_UNKNOWN",
    "WARNING_SIGNS",
    "PLAN_REVISION",
    "WORK_ITEMS",
    "FLAG_DETAIL",
    "FLAG_PRIORITY",
    "HELD_PLAN",
    "coding",
    "tag",
    "codesystem",
]

MONITOR_FLAGS = "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags"
FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"  # core R4 extension: what the flag is about
FLAG_PRIORITY = (
    "http://hl7.org/fhir/StructureDefinition/flag-priority"  # core R4 extension: PN | PL | PM | PH
)
HELD_PLAN = "http://fhir-gateway.org/fhir/StructureDefinition/monitor-held-plan"  # the CarePlan a flag put on hold

OVERDUE = "overdue"
UNACKNOWLEDGED = "unacknowledged"
PAST_DEADLINE = "past-deadline"
ESCALATED = "escalated"
READMISSION = "readmission"
CRISIS = "crisis"
WITHDRAWN = "withdrawn"
FAMILY_EDUCATION = "family-education"
APPOINTMENT_REMINDER = "appointment-reminder"
FUH_7 = "fuh-7"
FUH_30 = "fuh-30"
# case-manager work items raised the moment a referral or a message shows the gap (see _workitems)
UNASSIGNED = "unassigned"
LATE = "late"
DEADLINE_AT_RISK = "deadline-at-risk"
REROUTED = "rerouted"
NO_ENCOUNTER = "no-encounter"
UNABLE_TO_CONTACT = "unable-to-contact"
# work items of India's Mental Healthcare Act 2017 (see _mhca)
REPRESENTATIVE_PROPOSED = "nominated-representative"
DISCHARGE_PLANNING = "discharge-planning"
ADVANCE_DIRECTIVE = "advance-directive"
# work items of assessments, caring contacts (see fhir_gateway.assessments, fhir_gateway.contacts)
SUICIDE_RISK = "suicide-risk"
ASSESSMENT_INCOMPLETE = "assessment-incomplete"
CARING_CONTACT_REPLY = "caring-contact-reply"
# work items of medication adherence and relapse warning signs (fhir_gateway.adherence, .relapse)
LOW_ADHERENCE = "low-adherence"
REFILL_LATE = "refill-late"
MISSED_INJECTION = "missed-injection"
ADHERENCE_UNKNOWN = "adherence-unknown"
WARNING_SIGNS = "warning-signs"
PLAN_REVISION = "plan-revision"  # a screening result's plan activities: held for review, or no plan
WORK_ITEMS = (
    UNASSIGNED,
    LATE,
    DEADLINE_AT_RISK,
    REROUTED,
    NO_ENCOUNTER,
    REPRESENTATIVE_PROPOSED,
    DISCHARGE_PLANNING,
    ADVANCE_DIRECTIVE,
    UNABLE_TO_CONTACT,
    SUICIDE_RISK,
    ASSESSMENT_INCOMPLETE,
    CARING_CONTACT_REPLY,
    LOW_ADHERENCE,
    REFILL_LATE,
    MISSED_INJECTION,
    ADHERENCE_UNKNOWN,
    WARNING_SIGNS,
    PLAN_REVISION,
)

_CONCEPTS: dict[str, tuple[str, str]] = {
    OVERDUE: (
        "Overdue referral",
        "A referral Task not acknowledged in time or not completed by its deadline "
        "(restriction.period.end); the tag stays while it is overdue.",
    ),
    UNACKNOWLEDGED: (
        "Referral not acknowledged",
        "Requested, and not accepted by its partner within the "
        "configured time (monitor_ack_hours).",
    ),
    PAST_DEADLINE: ("Referral past its deadline", "Not completed by restriction.period.end."),
    ESCALATED: (
        "Escalated",
        "Still overdue a second period (monitor_escalate_hours) after it became overdue.",
    ),
    READMISSION: (
        "Readmission",
        "An inpatient admission within the readmission window (30 days) after a "
        "discharge with a care plan.",
    ),
    CRISIS: (
        "Crisis: emergency visit",
        "An emergency department visit within the readmission window after a "
        "discharge with a care plan; the highest priority.",
    ),
    WITHDRAWN: (
        "Alert withdrawn",
        "The admission or visit that raised the alert was cancelled (A11).",
    ),
    FAMILY_EDUCATION: (
        "Family education",
        "Psychoeducation for a family caregiver the patient consented to.",
    ),
    APPOINTMENT_REMINDER: (
        "Appointment reminder",
        "A reminder of a booked appointment to a consenting family caregiver.",
    ),
    FUH_7: (
        "Follow-up within 7 days",
        "A follow-up with a mental-health provider on day 1 to 7 after a psychiatric "
        "discharge (HEDIS FUH, 7-day rate).",
    ),
    FUH_30: (
        "Follow-up within 30 days",
        "A follow-up with a mental-health provider on day 1 to 30 after a "
        "psychiatric discharge (HEDIS FUH, 30-day rate).",
    ),
    UNASSIGNED: (
        "Unassigned referral",
        "A referral of an active plan that no partner could take; the Flag's text "
        "says which requirement (service, new clients, availability, language, area) no partner met. "
        "Inactive once a partner claims it or the case manager assigns it.",
    ),
    LATE: (
        "Referral late when sent",
        "The referral's clinical deadline (restriction.period.end, counted from the "
        "discharge) had passed when it went to its partner, e.g. a plan approved after its deadline: sent at "
        "once with priority urgent.",
    ),
    DEADLINE_AT_RISK: (
        "Acknowledgement window past the deadline",
        "The partner's acknowledgement window "
        "(monitor_ack_hours from receiving the referral) ends after the clinical deadline.",
    ),
    REROUTED: (
        "Referral re-routed again",
        "A referral moved to a partner for the second time or more "
        "(rejections or re-assignments): the case manager should follow it up.",
    ),
    NO_ENCOUNTER: (
        "Message created no Encounter",
        "An admission (A01) or discharge (A03) without a PV1 segment: "
        "no visit was recorded, so no care plan or alert follows from it.",
    ),
    REPRESENTATIVE_PROPOSED: (
        "Nominated representative to confirm",
        "A patient of an MHCA facility has no nominated representative: the gateway proposes the "
        "first available person in the order of the Mental Healthcare Act 2017, s14(4), for the case "
        "manager to confirm (it appoints no one). Inactive once one is confirmed.",
    ),
    DISCHARGE_PLANNING: (
        "Discharge plan without its participants",
        "A discharge plan of an MHCA facility records no participation of someone s98 names (the "
        "patient, the nominated representative, the family member or care-giver the patient will "
        "live with, the psychiatrist who will continue care). Inactive once CarePlan.contributor "
        "records them.",
    ),
    ADVANCE_DIRECTIVE: (
        "Advance directive: psychiatrist's decision",
        "A plan activity goes against the patient's advance directive (or the directive cannot be "
        "read by the gateway) while it may apply (s5(3); never to emergency treatment, s9): the "
        "psychiatrist decides (s10, s11); the activity stays in the plan.",
    ),
    UNABLE_TO_CONTACT: (
        "Partner could not contact the patient",
        "A partner rejected or closed a referral because it could not reach the patient "
        "(statusReason unable-to-contact of the referral-outcome or referral-reject-reason code "
        "system): the case manager must reach the patient. Active until a person resolves it.",
    ),
    SUICIDE_RISK: (
        "Suicide risk on a screening",
        "A C-SSRS screener with ideation with method, intent or plan, or behaviour in the past "
        "3 months, or a PHQ-9 item 9 above 0: the care team is alerted at once, never held for review.",
    ),
    ASSESSMENT_INCOMPLETE: (
        "Assessment incomplete",
        "A questionnaire response left a scored item unanswered, so no total was computed (an "
        "unanswered suicide item is never taken as negative): someone must ask the patient.",
    ),
    CARING_CONTACT_REPLY: (
        "Reply to a caring contact",
        "The patient answered a caring-contact message: the case manager reads and answers it.",
    ),
    LOW_ADHERENCE: (
        "Low medication adherence",
        "The proportion of days covered of a medication class fell below the threshold (0.8) over "
        "the rolling window.",
    ),
    REFILL_LATE: (
        "Refill late",
        "A medication's supply ran out more than the configured number of days ago with no refill.",
    ),
    MISSED_INJECTION: (
        "Long-acting injection missed",
        "A long-acting injectable was not given by its due date plus the grace period.",
    ),
    ADHERENCE_UNKNOWN: (
        "Adherence cannot be computed",
        "A dispense gave neither days' supply nor an amount and daily dose to derive it: no "
        "proportion of days covered was computed; the detail says what is missing.",
    ),
    WARNING_SIGNS: (
        "Early warning signs of relapse",
        "Reported early warning signs crossed what the patient's relapse-prevention plan says to "
        "act on.",
    ),
    PLAN_REVISION: (
        "Plan revision from a screening",
        "A screening result calls for activities in the patient's care plan (a safety-plan review, "
        "a follow-up call, a housing referral, an expedited psychiatry review): they await the case "
        "manager's approval (review mode), or the patient has no active plan to add them to.",
    ),
}


def coding(code: str) -> dict[str, str]:
    return {"system": MONITOR_FLAGS, "code": code, "display": _CONCEPTS[code][0]}


def tag(code: str) -> dict[str, str]:
    return coding(code)


def codesystem() -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": "monitor-flags",
        "url": MONITOR_FLAGS,
        "version": "5",
        "name": "MonitorFlags",
        "title": "fhir-gateway case-manager monitor codes",
        "status": "active",
        "experimental": False,
        "publisher": "fhir-gateway",
        "description": "What the gateway's case-manager monitors notice: meta.tag codes on overdue referral Tasks "
        "(search Task?_tag="
        + MONITOR_FLAGS
        + "|overdue), Flag and Communication codes, and family "
        "message categories.",
        "caseSensitive": True,
        "content": "complete",
        "count": len(_CONCEPTS),
        "concept": [
            {"code": c, "display": d, "definition": text} for c, (d, text) in _CONCEPTS.items()
        ],
    }
