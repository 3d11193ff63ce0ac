"""Messages on a referral: FHIR R4 Communications between the case manager and the partner, tied
to the referral Task.

The shape (``new_message``):

* ``basedOn``: the Task and its ServiceRequest. R4 defines ``Communication.basedOn`` as "an order,
  proposal or plan fulfilled in whole or in part by this Communication": a referral Task
  (``intent`` order) and its ServiceRequest are exactly that. Search:
  ``Communication?based-on=Task/{id}`` (one partner's thread) or ``based-on=ServiceRequest/{id}``
  (every partner's, across re-routes).
* ``partOf`` is left empty: R4 gives it to "a larger event of which this communication is a
  component or step", and the Task is a request, not an event. A message a client sends with
  ``partOf`` = the Task is still a message on that referral (``Communication?part-of=Task/{id}``).
* ``inResponseTo``: the message it answers; ``subject``: the Task's patient (consent and labels
  follow it); ``sender``/``recipient``: the partner's Organization and the case manager;
  ``status`` completed, ``sent`` now, the text in ``payload``.
* Labels: a message carries its referral's R/ETH/42CFRPart2 (``privacy.LABEL_SOURCES``, applied by
  the security label hook), so it goes only where the referral goes.

The rights (``check_message``, on every Communication write, API and web alike): a partner may
create a message only on a referral it owns; on any other Task the answer is the one for a Task
that does not exist. It writes as its own organisation, about that referral's patient, naming
nothing outside the thread; sent, unless it names a recipient, to the referral's coordinator
(``coordinators_of``). The case-manager side may write any Communication; on a referral, a
missing ``subject`` is taken from the Task.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock, security
from fhir_gateway.context import Caller
from fhir_gateway.errors import Forbidden, InvalidRequest, NotFound
from fhir_gateway.fhir.references import Reference
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.workflow._coordinator import coordinators_of
from fhir_gateway.workflow._referrals import is_referral, read, ref

__all__ = [
    "MAX_MESSAGE",
    "MAX_PAYLOADS",
    "THREAD_FIELDS",
    "new_message",
    "check_message",
    "referral_of",
    "message_text",
]

MAX_MESSAGE = 4000  # characters of one message written in the web pages
MAX_PAYLOADS = 20  # payload entries of one message from a partner
THREAD_FIELDS = ("basedOn", "partOf")
_CATEGORY = {
    "coding": [
        {
            "system": "http://terminology.hl7.org/CodeSystem/communication-category",
            "code": "notification",
        }
    ]
}


def new_message(
    task: dict[str, Any],
    text: str,
    *,
    sender: str,
    recipient: str | None,
    answering: str | None = None,
) -> dict[str, Any]:
    """A message on the referral ``task`` (its stored content), ready to create."""
    words = text.strip()
    if not words:
        raise InvalidRequest("Write a message before sending it.")
    if len(words) > MAX_MESSAGE:
        raise InvalidRequest(f"A message holds at most {MAX_MESSAGE} characters.")
    doc: dict[str, Any] = {
        "resourceType": "Communication",
        "basedOn": [{"reference": f"Task/{task['id']}"}]
        + ([{"reference": r}] if (r := ref(task, "focus")) else []),
        "status": "completed",
        "category": [_CATEGORY],
        "subject": {"reference": ref(task, "for")},
        "sent": clock.to_instant(clock.now()),
        "sender": {"reference": sender},
        "payload": [{"contentString": words}],
    }
    if recipient:
        doc["recipient"] = [{"reference": recipient}]
    if answering:
        doc["inResponseTo"] = [{"reference": answering}]
    return doc


def message_text(message: dict[str, Any]) -> str:
    """The words of a message (its text payloads; an attachment by its title)."""
    parts = []
    for payload in message.get("payload") or []:
        if payload.get("contentString"):
            parts.append(str(payload["contentString"]))
        elif (payload.get("contentAttachment") or {}).get("title"):
            parts.append(f"[attachment: {payload['contentAttachment']['title']}]")
    return "\n".join(parts)


def _thread_refs(doc: dict[str, Any]) -> list[str]:
    return [
        str(r.get("reference"))
        for field in THREAD_FIELDS
        for r in doc.get(field) or []
        if isinstance(r, dict) and r.get("reference")
    ]


def referral_of(doc: dict[str, Any]) -> str | None:
    """The referral Task (``Task/id``) a message is on, if it names one in basedOn/partOf."""
    return next((r for r in _thread_refs(doc) if Reference.id_of(r, "Task")), None)


# -- the check on every Communication write ---------------------------------------------------------


def check_message(event: WriteEvent) -> None:
    """before_write('Communication'): a partner writes only on its own referrals, as itself; the
    requester side's messages on a referral get the referral's patient as subject."""
    doc = event.after
    if doc is None:
        return None
    if event.caller.role == "partner":
        _check_partner(event.session, event.caller, doc)
        return None
    task_ref = referral_of(doc)
    task = read(event.session, task_ref) if task_ref else None
    if task is not None and is_referral(task) and not doc.get("subject") and ref(task, "for"):
        doc["subject"] = {"reference": ref(task, "for")}
    return None


def _check_partner(session: Session, caller: Caller, doc: dict[str, Any]) -> None:
    organization = caller.organization or ""
    tasks = list(dict.fromkeys(r for r in _thread_refs(doc) if Reference.id_of(r, "Task")))
    if not tasks:
        raise InvalidRequest(
            "A partner's message must be on one of its referrals: basedOn the referral Task",
            expression=["Communication.basedOn"],
        )
    if len(tasks) > 1:
        raise InvalidRequest(
            "A message is on one referral: name one Task in basedOn/partOf",
            expression=["Communication.basedOn"],
        )
    task = _owned(session, caller, tasks[0])
    allowed = {tasks[0], ref(task, "focus")}
    if any(r not in allowed for r in _thread_refs(doc)):
        raise InvalidRequest(
            "basedOn/partOf of a partner's message may name only the referral Task and its "
            "ServiceRequest",
            expression=["Communication.basedOn", "Communication.partOf"],
        )
    for answered in doc.get("inResponseTo") or []:
        _visible(session, caller, str((answered or {}).get("reference") or ""), "Communication")
    patient = ref(task, "for")
    if doc.get("subject") and ref(doc, "subject") != patient:
        raise InvalidRequest(
            "A message on a referral is about the referral's patient (Communication.subject)",
            expression=["Communication.subject"],
        )
    if doc.get("sender") and ref(doc, "sender") != organization:
        raise Forbidden(
            f"A partner sends messages as its own organisation ({organization})",
            expression=["Communication.sender"],
        )
    if not doc.get("payload") or len(doc["payload"]) > MAX_PAYLOADS:
        raise InvalidRequest(
            f"A message carries 1 to {MAX_PAYLOADS} payloads", expression=["Communication.payload"]
        )
    doc["subject"] = {"reference": patient}
    doc["sender"] = {"reference": organization}
    doc.setdefault("sent", clock.to_instant(clock.now()))
    coordinator = coordinators_of(session, [task]).get(str(task.get("id")))
    if not doc.get("recipient") and coordinator:
        doc["recipient"] = [{"reference": coordinator}]


def _visible(session: Session, caller: Caller, reference: str, res_type: str) -> None:
    """NotFound, worded as for a missing resource, unless the caller may see ``reference``."""
    res_id = Reference.id_of(reference, res_type)
    if res_id is None or not security.visible_to(session, caller, res_type, res_id):
        raise NotFound(f"{reference or res_type} is not known")


def _owned(session: Session, caller: Caller, task_ref: str) -> dict[str, Any]:
    """The referral Task the partner owns; else NotFound, as for a Task that does not exist (an
    open Task it could claim is not its own yet)."""
    _visible(session, caller, task_ref, "Task")
    task = read(session, task_ref)
    if task is None or not is_referral(task) or ref(task, "owner") != caller.organization:
        raise NotFound(f"{task_ref} is not known")
    return task
