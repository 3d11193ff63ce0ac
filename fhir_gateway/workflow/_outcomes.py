"""Coded outcomes of a referral: why a partner rejected it, how it ended when the partner closed it
without completing it, and what came of it when completed.

The SDOH Clinical Care IG asks for a ``Task.statusReason`` with rejected/cancelled/on-hold/failed
but binds no value set to it, and neither R4 nor the IG codes a referral's result, so the gateway
publishes two small code systems of its own (stable: clients may rely on them; stored as
``CodeSystem/referral-reject-reason`` and ``CodeSystem/referral-outcome``):

* ``REJECT_SYSTEM``: the reasons a partner gives for rejecting (status ``rejected``).
* ``OUTCOME_SYSTEM``: why a referral the partner took could not be done (``statusReason`` of a
  ``failed``, ``cancelled`` or ``on-hold`` Task) and what a completed one achieved (a
  ``Task.output`` typed ``referral-outcome``). Each concept's ``task-status`` property says where it
  goes.

``unable-to-contact`` is in both: a partner that could not reach the patient, before or after
taking the referral. Either way the monitors raise a work item for the case manager
(``monitors._workitems``), who must reach the patient.

A write that uses one of these systems with a code it does not hold, or with a code that does not
fit the Task's status, is refused (400, naming the element and the codes that fit); other code
systems are the writer's business.
"""

from __future__ import annotations

from typing import Any

from fhir_gateway.errors import InvalidRequest
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.workflow._referrals import is_referral

__all__ = [
    "REJECT_SYSTEM",
    "REJECT_REASONS",
    "OUTCOME_SYSTEM",
    "CLOSE_REASONS",
    "COMPLETE_OUTCOMES",
    "UNABLE_TO_CONTACT",
    "OUTCOME_TYPE",
    "NOTE_TYPE",
    "reject_reason",
    "close_reason",
    "completion_outputs",
    "unable_to_contact",
    "check_outcomes",
    "outcome_codesystems",
]

REJECT_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/referral-reject-reason"
OUTCOME_SYSTEM = "http://fhir-gateway.org/fhir/CodeSystem/referral-outcome"
UNABLE_TO_CONTACT = "unable-to-contact"

REJECT_REASONS: dict[str, str] = {
    "no-capacity": "No capacity to take the referral",
    "not-eligible": "The patient is not eligible for the service",
    "service-not-offered": "The service asked for is not offered",
    "outside-area": "The patient lives outside the service area",
    "patient-declined": "The patient declined the service",
    UNABLE_TO_CONTACT: "Unable to contact the patient",
    "other": "Other reason",
}
CLOSE_REASONS: dict[str, str] = {
    UNABLE_TO_CONTACT: "Unable to contact the patient",
    "patient-declined": "The patient declined the service",
    "did-not-attend": "The patient did not attend",
    "moved-away": "The patient moved out of the service area",
    "other": "Other reason",
}
COMPLETE_OUTCOMES: dict[str, str] = {
    "service-provided": "The service was provided",
    "first-visit-kept": "The patient attended the first appointment",
    "enrolled": "The patient is enrolled in the programme",
    "referred-on": "The patient was referred on to another service",
}
# Task.output types: the coded result, and the partner's words beside it
OUTCOME_TYPE = {
    "coding": [{"system": OUTCOME_SYSTEM, "code": "referral-outcome", "display": "Outcome"}],
    "text": "Outcome",
}
NOTE_TYPE = {"text": "Outcome note"}

_CLOSING = ("failed", "cancelled", "on-hold")
# (system, Task status) → the codes that fit
_FITTING: dict[tuple[str, str], dict[str, str]] = {
    (REJECT_SYSTEM, "rejected"): REJECT_REASONS,
    **{(OUTCOME_SYSTEM, status): CLOSE_REASONS for status in _CLOSING},
}


def _concept(system: str, code: str, display: str, note: str = "") -> dict[str, Any]:
    return {
        "coding": [{"system": system, "code": code, "display": display}],
        "text": f"{display}: {note}" if note else display,
    }


def _choices(codes: dict[str, str]) -> str:
    return "; ".join(f"{code} ({text})" for code, text in codes.items())


def reject_reason(code: str, note: str = "") -> dict[str, Any]:
    """The statusReason of a rejection (InvalidRequest for a code the system does not hold)."""
    if code not in REJECT_REASONS:
        raise InvalidRequest(
            f"Choose a reason for rejecting the referral: {_choices(REJECT_REASONS)}"
        )
    return _concept(REJECT_SYSTEM, code, REJECT_REASONS[code], note)


def close_reason(code: str, note: str = "") -> dict[str, Any]:
    """The statusReason of a referral the partner closes without completing it."""
    if code not in CLOSE_REASONS:
        raise InvalidRequest(
            f"Choose why the referral could not be done: {_choices(CLOSE_REASONS)}"
        )
    return _concept(OUTCOME_SYSTEM, code, CLOSE_REASONS[code], note)


def completion_outputs(code: str, note: str) -> list[dict[str, Any]]:
    """The ``Task.output`` entries of a completion: the coded outcome, and the note when given."""
    if code not in COMPLETE_OUTCOMES:
        raise InvalidRequest(f"Choose what came of the referral: {_choices(COMPLETE_OUTCOMES)}")
    out: list[dict[str, Any]] = [
        {
            "type": OUTCOME_TYPE,
            "valueCodeableConcept": _concept(OUTCOME_SYSTEM, code, COMPLETE_OUTCOMES[code]),
        }
    ]
    if note:
        out.append({"type": NOTE_TYPE, "valueString": note})
    return out


def _codings(concept: Any) -> list[dict[str, Any]]:
    if not isinstance(concept, dict):
        return []
    return [c for c in concept.get("coding") or [] if isinstance(c, dict)]


def unable_to_contact(task: dict[str, Any] | None) -> bool:
    """Does the Task say its partner could not contact the patient (statusReason, either system)?"""
    return any(
        c.get("system") in (REJECT_SYSTEM, OUTCOME_SYSTEM) and c.get("code") == UNABLE_TO_CONTACT
        for c in _codings((task or {}).get("statusReason"))
    )


# -- the check on every referral Task write ---------------------------------------------------------


def check_outcomes(event: WriteEvent) -> None:
    """before_write('Task'): the gateway's codes in a changed statusReason or a new output must be
    codes of their system that fit the Task's status."""
    after = event.after
    before = event.before.content if event.before is not None else {}
    if after is None or not is_referral(after):
        return None
    status = str(after.get("status") or "")
    if after.get("statusReason") != before.get("statusReason"):
        for coding in _codings(after.get("statusReason")):
            _check_reason(coding, status)
    old = before.get("output") or []
    for output in after.get("output") or []:
        if output not in old and isinstance(output, dict):
            for coding in _codings(output.get("valueCodeableConcept")):
                _check_result(coding)
    return None


def _check_reason(coding: dict[str, Any], status: str) -> None:
    system, code = coding.get("system"), coding.get("code")
    if system not in (REJECT_SYSTEM, OUTCOME_SYSTEM):
        return
    fitting = _FITTING.get((str(system), status))
    if fitting is None:
        where = "rejected" if system == REJECT_SYSTEM else ", ".join(_CLOSING)
        raise InvalidRequest(
            f"Task.statusReason: {system} gives reasons for a referral that is {where}, "
            f"not one that is {status or 'without a status'}",
            expression=["Task.statusReason"],
        )
    if code not in fitting:
        raise InvalidRequest(
            f"Task.statusReason: {code!r} is not a code of {system} for a referral that is "
            f"{status}; use one of: {_choices(fitting)}",
            expression=["Task.statusReason"],
        )


def _check_result(coding: dict[str, Any]) -> None:
    if coding.get("system") == OUTCOME_SYSTEM and coding.get("code") not in COMPLETE_OUTCOMES:
        raise InvalidRequest(
            f"Task.output: {coding.get('code')!r} is not an outcome of {OUTCOME_SYSTEM}; "
            f"use one of: {_choices(COMPLETE_OUTCOMES)}",
            expression=["Task.output.value"],
        )


# -- the code systems as FHIR ------------------------------------------------------------------------


def _codesystem(
    cs_id: str, url: str, title: str, description: str, concepts: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "resourceType": "CodeSystem",
        "id": cs_id,
        "url": url,
        "version": "1",
        "name": "".join(p.capitalize() for p in cs_id.split("-")),
        "title": title,
        "status": "active",
        "experimental": False,
        "publisher": "fhir-gateway",
        "description": description,
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }


def _with_status(codes: dict[str, str], statuses: tuple[str, ...]) -> list[dict[str, Any]]:
    return [
        {
            "code": code,
            "display": display,
            "property": [{"code": "task-status", "valueCode": s} for s in statuses],
        }
        for code, display in codes.items()
    ]


def outcome_codesystems() -> list[dict[str, Any]]:
    """``CodeSystem/referral-reject-reason`` and ``CodeSystem/referral-outcome``."""
    outcome_concepts = {
        c["code"]: c
        for c in _with_status(CLOSE_REASONS, _CLOSING)
        + _with_status(COMPLETE_OUTCOMES, ("completed",))
    }
    task_status = {
        "code": "task-status",
        "uri": "http://hl7.org/fhir/task-status",
        "description": "The Task status this code goes with",
        "type": "code",
    }
    reject = _codesystem(
        "referral-reject-reason",
        REJECT_SYSTEM,
        "fhir-gateway referral rejection reasons",
        "Why a community partner rejected a referral Task (Task.statusReason of a rejected Task).",
        [{"code": c, "display": d} for c, d in REJECT_REASONS.items()],
    )
    outcome = _codesystem(
        "referral-outcome",
        OUTCOME_SYSTEM,
        "fhir-gateway referral outcomes",
        "Why a referral the partner took could not be done (Task.statusReason of a failed, "
        "cancelled or on-hold Task) and what a completed one achieved (Task.output typed "
        "referral-outcome). 'unable-to-contact' raises a work item for the case manager.",
        [
            {"code": "referral-outcome", "display": "Outcome", "definition": "Task.output type"},
            *outcome_concepts.values(),
        ],
    )
    outcome["property"] = [task_status]
    return [reject, outcome]
