"""The case manager's page of one referral (``/web/referrals/{task_id}``): the referral card
(what, why, for whom, by when, how it ended), the partner and how to reach them, the alerts raised
about it, the partners it went to before, its states over time, and the messages with the partner,
with a form to write to them.

Read with the case manager's Caller (``services.resources`` and the store's search), except the
states over time, which come from the workflow's history (the Task's versions), as on the patient
page: right only because this page is for the care-coordination team, who see every row anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from sqlalchemy.orm import Session

from fhir_gateway import workflow
from fhir_gateway.context import Caller
from fhir_gateway.errors import GatewayError, InvalidRequest
from fhir_gateway.monitors import MONITOR_FLAGS
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings
from fhir_gateway.store.search import match_ids, search_bundle
from fhir_gateway.web._cards import Card, Contact, card_of, contact_of, messages_of
from fhir_gateway.web._display import Display, Names, flag_kind, task_state

__all__ = ["ReferralPage", "ReferralAlert", "Step", "Earlier", "referral_page", "send_message"]

_FLAG_DETAIL = "http://hl7.org/fhir/StructureDefinition/flag-detail"
MESSAGES_SHOWN = 200  # the latest messages of one referral


@dataclass(frozen=True, slots=True)
class ReferralAlert:
    kind: str
    text: str
    since: str


@dataclass(frozen=True, slots=True)
class Step:
    state: str
    since: str
    since_iso: str


@dataclass(frozen=True, slots=True)
class Earlier:
    partner: str
    state: str
    reason: str | None


@dataclass(slots=True)
class ReferralPage:
    card: Card
    partner: Contact | None
    coordinator: Contact | None
    alerts: list[ReferralAlert] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    earlier: list[Earlier] = field(default_factory=list)


def _served(session: Session, caller: Caller, res_type: str, res_id: str) -> dict[str, Any] | None:
    try:
        return resources.read_served(session, res_type, res_id, caller).content
    except GatewayError:
        return None


def _ids(
    session: Session, caller: Caller, res_type: str, params: list[tuple[str, str]]
) -> list[str]:
    return match_ids(session, res_type, params, caller=caller)


def _ref(doc: dict[str, Any], name: str) -> str | None:
    value = doc.get(name)
    return value.get("reference") if isinstance(value, dict) else None


def referral_page(
    session: Session, caller: Caller, settings: Settings, task_id: str
) -> ReferralPage | None:
    task = _served(session, caller, "Task", task_id)
    if task is None:
        return None
    names, display = Names(session, caller), Display.for_settings(settings)
    request_ref, patient_ref = _ref(task, "focus") or "", _ref(task, "for") or ""
    card = card_of(task, names.resource(request_ref), names.resource(patient_ref), names, display)
    coordinator = workflow.coordinators_of(session, [task]).get(task_id)
    thread = _thread(session, caller, settings, task_id)
    owner = _ref(task, "owner")
    names.prefetch([owner, coordinator, *(_ref(m, "sender") for m in thread)])
    card.messages = messages_of(
        thread, names, display, lambda sender: sender is not None and sender != owner
    )
    return ReferralPage(
        card=card,
        partner=contact_of(names, owner),
        coordinator=contact_of(names, coordinator),
        alerts=_alerts(session, caller, display, task, patient_ref),
        steps=[
            Step(task_state(span.status), display.when(span.start), display.iso(span.start))
            for span in workflow.time_in_states(session, task_id)
        ],
        earlier=_earlier(session, caller, names, task_id, request_ref),
    )


def _thread(
    session: Session, caller: Caller, settings: Settings, task_id: str
) -> list[dict[str, Any]]:
    """The latest messages on the referral (at most ``MESSAGES_SHOWN``, a bound)."""
    params = [("based-on", f"Task/{task_id}"), ("_sort", "-sent"), ("_count", str(MESSAGES_SHOWN))]
    body = search_bundle(
        session, "Communication", params, caller=caller, base_url="", settings=settings
    )
    return [e["resource"] for e in orjson.loads(body).get("entry") or [] if "resource" in e]


def _alerts(
    session: Session, caller: Caller, display: Display, task: dict[str, Any], patient_ref: str
) -> list[ReferralAlert]:
    """The patient's active alerts and work items about this referral (flag-detail names it)."""
    about = {f"Task/{task['id']}", _ref(task, "focus")}
    out = []
    for flag_id in _ids(session, caller, "Flag", [("patient", patient_ref)]):
        flag = _served(session, caller, "Flag", flag_id) or {}
        if flag.get("status") != "active":
            continue
        details = {
            (e.get("valueReference") or {}).get("reference")
            for e in flag.get("extension") or []
            if e.get("url") == _FLAG_DETAIL
        }
        if not details & about:
            continue
        kind = next(
            (
                t.get("code")
                for t in (flag.get("meta") or {}).get("tag") or []
                if t.get("system") == MONITOR_FLAGS
            ),
            None,
        )
        out.append(
            ReferralAlert(
                flag_kind(kind),
                str((flag.get("code") or {}).get("text") or ""),
                display.when((flag.get("period") or {}).get("start")),
            )
        )
    return out


def _earlier(
    session: Session, caller: Caller, names: Names, task_id: str, request_ref: str
) -> list[Earlier]:
    """The other Tasks of the same referral: the partners it went to before (or after)."""
    if not request_ref:
        return []
    out = []
    for other_id in _ids(session, caller, "Task", [("focus", request_ref)]):
        other = _served(session, caller, "Task", other_id) if other_id != task_id else None
        if other is None:
            continue
        out.append(
            Earlier(
                names.of(other.get("owner"), missing="No partner"),
                task_state(other.get("status")),
                (other.get("statusReason") or {}).get("text"),
            )
        )
    return out


def send_message(
    session: Session,
    caller: Caller,
    settings: Settings,
    task_id: str,
    text: str,
    answering: str | None,
) -> None:
    """A message from the care team to the referral's partner."""
    task = dict(resources.read(session, "Task", task_id, caller).content)
    owner = _ref(task, "owner")
    if owner is None:
        raise InvalidRequest(
            "This referral has no partner yet: assign it to a partner before writing to one."
        )
    doc = workflow.new_message(
        task,
        text,
        sender=caller.organization or settings.case_manager,
        recipient=owner,
        answering=answering or None,
    )
    resources.create(session, "Communication", doc, caller)
