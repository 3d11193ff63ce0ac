"""Closed-loop referrals: the referral Task state machine and its rights, what a transition sets
off (ServiceRequest and CarePlan status, re-routing, the "direct" push to a partner's server), and
the history of every transition.

    install(settings)                 # once, by the composition root: registers the write hooks
    allowed_next("requested")         # → accepted, cancelled, entered-in-error, rejected
    time_in_states(session, "task-id")  # → [StateSpan(status, start, end, version)]
    received_at(session, "task-id")     # when its current owner received it (from its versions)
    poll_partners(database, settings) # mirror partner-server changes (the worker calls it)
    close_reason("unable-to-contact", "three calls")  # coded outcomes (``_outcomes``)
    new_message(task, "Can you call me?", sender=…, recipient=…)  # a message on a referral
    coordinators_of(session, tasks)   # who coordinates each referral (name it, message them)

Every create, update, patch and delete of a Task, ServiceRequest or CarePlan, through the REST API,
a transaction Bundle or the gateway's own services, passes through ``fhir_gateway.hooks``; nothing
here edits the write path.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import hooks
from fhir_gateway.services import applied
from fhir_gateway.settings import Settings
from fhir_gateway.workflow._consequences import (
    on_careplan,
    on_outcome,
    on_service_requests,
    on_tasks,
)
from fhir_gateway.workflow._coordinator import CASE_MANAGER_ROLES, coordinators_of
from fhir_gateway.workflow._direct import (
    PUSH_CHANNEL,
    partner_caller,
    poll_partners,
    push_bundle,
    push_payload,
)
from fhir_gateway.workflow._history import (
    StateSpan,
    durations,
    flush_provenance,
    forget_transitions,
    owners_over_time,
    owners_over_time_of,
    received_at,
    time_in_states,
)
from fhir_gateway.workflow._messages import (
    MAX_MESSAGE,
    check_message,
    message_text,
    new_message,
    referral_of,
)
from fhir_gateway.workflow._outcomes import (
    CLOSE_REASONS,
    COMPLETE_OUTCOMES,
    NOTE_TYPE,
    OUTCOME_SYSTEM,
    OUTCOME_TYPE,
    REJECT_REASONS,
    REJECT_SYSTEM,
    UNABLE_TO_CONTACT,
    check_outcomes,
    close_reason,
    completion_outputs,
    outcome_codesystems,
    reject_reason,
    unable_to_contact,
)
from fhir_gateway.workflow._partners import (
    PartnerChoice,
    eligible_organizations,
    no_partner_reason,
    partner_choices,
)
from fhir_gateway.workflow._progress import (
    PROGRESS_EXT,
    flush_plan_progress,
    forget_plan_progress,
)
from fhir_gateway.workflow._rules import check_task
from fhir_gateway.workflow._states import (
    OPEN,
    OWNER_FIELDS,
    TERMINAL,
    TRANSITIONS,
    allowed_next,
    is_legal,
)

__all__ = [
    "CASE_MANAGER_ROLES",
    "CLOSE_REASONS",
    "COMPLETE_OUTCOMES",
    "MAX_MESSAGE",
    "NOTE_TYPE",
    "OUTCOME_SYSTEM",
    "OUTCOME_TYPE",
    "REJECT_REASONS",
    "REJECT_SYSTEM",
    "UNABLE_TO_CONTACT",
    "close_reason",
    "completion_outputs",
    "coordinators_of",
    "message_text",
    "new_message",
    "outcome_codesystems",
    "referral_of",
    "reject_reason",
    "unable_to_contact",
    "OPEN",
    "OWNER_FIELDS",
    "PROGRESS_EXT",
    "PartnerChoice",
    "StateSpan",
    "TERMINAL",
    "TRANSITIONS",
    "allowed_next",
    "durations",
    "eligible_organizations",
    "flush_plan_progress",
    "flush_provenance",
    "flush_transaction",
    "install",
    "is_legal",
    "no_partner_reason",
    "owners_over_time",
    "owners_over_time_of",
    "partner_caller",
    "partner_choices",
    "poll_partners",
    "push_bundle",
    "push_payload",
    "PUSH_CHANNEL",
    "received_at",
    "time_in_states",
]


def install(rules: hooks.Rules, settings: Settings) -> None:
    """Register the workflow's checks and consequences (they read the app's settings from the
    session)."""
    del settings
    rules.before_write("Task", check_task)
    rules.before_write("Task", check_outcomes)  # the gateway's outcome codes fit the status
    rules.before_write("Communication", check_message)  # messages on referrals: partner's rights
    rules.after_write_batch("Task", on_tasks)
    rules.after_write_batch("ServiceRequest", on_service_requests)
    rules.after_write("CarePlan", on_careplan)
    rules.after_write("Procedure", on_outcome)
    rules.after_write("Observation", on_outcome)
    # What waits for the end of a transaction (plan progress once per plan, one Provenance per
    # agent): flushed at the end of each intake message (inside its savepoint) and before every
    # other commit, after the discharge's own before_commit (it may write a plan).
    rules.on_message_applied(_flush_after_message)
    rules.on_session("before_commit", _flush_before_commit)
    rules.on_session("after_soft_rollback", _forget)


def flush_transaction(session: Session) -> None:
    """Plan progress first (a plan's refresh changes no Task), then the transitions' Provenance."""
    flush_plan_progress(session)
    flush_provenance(session)


def _flush_after_message(session: Session, _message: applied.MessageApplied) -> None:
    flush_transaction(session)


def _flush_before_commit(session: Session) -> None:
    # before_commit also fires when a savepoint is released: wait for the real commit
    if not session.in_nested_transaction():
        flush_transaction(session)


def _forget(session: Session, transaction: Any) -> None:
    forget_transitions(session, transaction)
    if not transaction.nested:
        forget_plan_progress(session)
