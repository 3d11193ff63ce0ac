"""A referral as a person reads it, for the partner inbox and the case manager's referral page:
what is asked and why, by when, for whom and how to reach them, who coordinates it, how it ended,
and the messages on it.

Built only from copies the page's caller may receive (a search's served entries, ``Names``), so
the row policy and the privacy module have decided what is here: a Part 2 referral reaches a
partner only under the patient's consent, and a diagnosis the partner cannot read is named only
by words its labels let travel with the referral (``reasons_of``). Who coordinates a referral
comes from the workflow (``coordinators_of``, a reference to a member of staff); that person's
name and telecom are read through the caller's eyes too.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from fhir_gateway import privacy
from fhir_gateway.fhir.references import Reference
from fhir_gateway.store import repository
from fhir_gateway.web._display import Display, Names, human_name, task_state
from fhir_gateway.workflow import OPEN, OUTCOME_SYSTEM, message_text

__all__ = [
    "Card",
    "Contact",
    "ThreadMessage",
    "card_of",
    "contact_of",
    "messages_of",
    "reasons_of",
    "patient_contacts",
    "born",
]

_OVERDUE_TAG = ("http://fhir-gateway.org/fhir/CodeSystem/monitor-flags", "overdue")
_NEAR_DAYS = 31
_TELECOM_WORDS = {"phone": "Phone", "email": "Email", "sms": "Text", "fax": "Fax", "url": "Web"}


@dataclass(frozen=True, slots=True)
class Contact:
    name: str
    telecom: list[tuple[str, str]]  # ("Phone", "+1 …"), in the order the resource lists them


@dataclass(frozen=True, slots=True)
class ThreadMessage:
    message_id: str
    sender: str
    mine: bool  # written by the side reading the page
    when: str
    when_iso: str
    text: str


@dataclass(slots=True)
class Card:
    task_id: str
    version: int
    status: str
    state: str  # the status in words
    service: str
    patient_id: str
    patient_name: str
    patient_born: str | None
    patient_contacts: list[str]
    why: list[str]
    asked: str | None  # what the referral asks the partner to do (its instructions)
    deadline: str | None
    deadline_iso: str
    deadline_relative: str
    overdue: bool
    received: str | None
    received_iso: str
    owner: str | None
    outcome: str | None
    coordinator: Contact | None = None
    partner: Contact | None = None
    messages: list[ThreadMessage] = field(default_factory=list)

    @property
    def open(self) -> bool:
        return self.status in OPEN

    @property
    def answering(self) -> str | None:
        """The latest message from the other side: what a reply answers."""
        theirs = [m for m in self.messages if not m.mine]
        return theirs[-1].message_id if theirs else None

    @property
    def unanswered(self) -> bool:
        return bool(self.messages) and not self.messages[-1].mine


def _ref(doc: dict[str, Any] | None, name: str) -> str | None:
    value = (doc or {}).get(name)
    return value.get("reference") if isinstance(value, dict) else None


def _concept_words(concept: dict[str, Any] | None) -> str | None:
    concept = concept or {}
    return concept.get("text") or next(
        (c.get("display") for c in concept.get("coding") or [] if c.get("display")), None
    )


def reasons_of(request: dict[str, Any], names: Names) -> list[str]:
    """Why the referral was made, in words: its coded reasons and the diagnoses it names, as far
    as the caller may read them. A diagnosis the caller cannot see is named only by the words the
    referral carries for it, and only when the privacy module lets them travel with the referral
    (``may_carry_text_of``: the referral holds every label of the diagnosis), however the
    referral was written."""
    out = [w for c in request.get("reasonCode") or [] if (w := _concept_words(c))]
    for reason in request.get("reasonReference") or []:
        seen = names.resource(reason)
        words: str | None = None
        if seen is not None:  # the caller reads the diagnosis itself
            code = seen.get("code") or {}
            words = _concept_words(code) or reason.get("display") or _first_code(code)
        elif reason.get("display"):
            source = _source(names, reason.get("reference"))
            if privacy.may_carry_text_of(source, privacy.labels_of(request)):
                words = str(reason["display"])
        if words:
            out.append(str(words))
    return list(dict.fromkeys(out))


def _first_code(concept: dict[str, Any]) -> str | None:
    return next((str(c["code"]) for c in concept.get("coding") or [] if c.get("code")), None)


def _source(names: Names, reference: Any) -> dict[str, Any] | None:
    """The stored resource a display was copied from, for its labels only (never shown)."""
    ref = Reference.parse_relative(reference)
    if ref is None or ref.type is None:
        return None
    found = repository.read(names.session, ref.type, ref.id)
    return None if found is None or found.deleted else found.content


def born(patient: dict[str, Any]) -> str | None:
    text = patient.get("birthDate")
    try:
        day = date.fromisoformat(str(text))
    except ValueError:
        return str(text) if text else None
    return f"{day.day} {day:%b %Y}"


def patient_contacts(patient: dict[str, Any]) -> list[str]:
    """How to reach the patient, from the copy the caller may see (a partner's is the minimum)."""
    out = [
        f"{_TELECOM_WORDS.get(str(t.get('system')), 'Contact')}: {t['value']}"
        for t in patient.get("telecom") or []
        if isinstance(t, dict) and t.get("value")
    ]
    for address in patient.get("address") or []:
        words = address.get("text") or ", ".join(
            p
            for p in [
                *(address.get("line") or []),
                address.get("city"),
                address.get("postalCode"),
            ]
            if p
        )
        if words:
            out.append(f"Address: {words}")
    return out


def contact_of(names: Names, reference: str | None) -> Contact | None:
    if not reference:
        return None
    seen = names.resource(reference) or {}
    telecom = [
        (_TELECOM_WORDS.get(str(t.get("system")), "Contact"), str(t["value"]))
        for t in seen.get("telecom") or []
        if isinstance(t, dict) and t.get("value")
    ]
    return Contact(names.of(reference), telecom)


def messages_of(
    messages: list[dict[str, Any]],
    names: Names,
    display: Display,
    mine: Callable[[str | None], bool],
) -> list[ThreadMessage]:
    """The messages in the order they were sent; ``mine`` tells the reading side's senders."""
    out = []
    for doc in sorted(messages, key=lambda m: (str(m.get("sent") or ""), str(m.get("id")))):
        sender = _ref(doc, "sender")
        out.append(
            ThreadMessage(
                message_id=f"Communication/{doc.get('id')}",
                sender=names.of(doc.get("sender"), missing="Unknown sender"),
                mine=mine(sender),
                when=display.when(doc.get("sent")),
                when_iso=display.iso(doc.get("sent")),
                text=message_text(doc),
            )
        )
    return out


def _deadline_passed(task: dict[str, Any], display: Display) -> bool:
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    at = display.local(end)
    if at is None:
        return False
    if "T" not in str(end):  # a day: due by its end
        at += timedelta(days=1)
    return at < display.now


def _overdue(task: dict[str, Any], display: Display) -> bool:
    if task.get("status") not in OPEN:
        return False
    tags = {(t.get("system"), t.get("code")) for t in (task.get("meta") or {}).get("tag") or []}
    return _OVERDUE_TAG in tags or _deadline_passed(task, display)


def _outcome(task: dict[str, Any]) -> str | None:
    words = [_concept_words(task.get("statusReason"))] if task.get("statusReason") else []
    for output in task.get("output") or []:
        coded = output.get("valueCodeableConcept")
        if coded and any(c.get("system") == OUTCOME_SYSTEM for c in coded.get("coding") or []):
            words.append(_concept_words(coded))
        elif output.get("valueString"):
            words.append(str(output["valueString"]))
    kept = [w for w in words if w]
    return "; ".join(kept) if kept else None


def _near(value: Any, display: Display) -> str:
    """How far away a deadline is ("in 3 days", "2 hours ago"), when that helps: within a month."""
    at = display.local(value)
    if at is None or abs((at - display.now).days) > _NEAR_DAYS:
        return ""
    return display.relative(value)


def _when(value: Any, display: Display) -> tuple[str | None, str]:
    return (display.when(value), display.iso(value)) if value else (None, "")


def card_of(
    task: dict[str, Any],
    request: dict[str, Any] | None,
    patient: dict[str, Any] | None,
    names: Names,
    display: Display,
) -> Card:
    """One referral from the caller's copies of its Task, ServiceRequest and Patient."""
    request, patient = request or {}, patient or {}
    end = ((task.get("restriction") or {}).get("period") or {}).get("end")
    received, received_iso = _when(task.get("lastModified") or task.get("authoredOn"), display)
    deadline, deadline_iso = _when(end, display)
    return Card(
        task_id=str(task["id"]),
        version=int((task.get("meta") or {}).get("versionId") or 0),
        status=str(task.get("status") or ""),
        state=task_state(task.get("status")),
        service=_concept_words(request.get("code")) or task.get("description") or "Referral",
        patient_id=Reference.id_of(_ref(task, "for"), "Patient") or "",
        patient_name=human_name(patient.get("name")) or "(no name)",
        patient_born=born(patient),
        patient_contacts=patient_contacts(patient),
        why=reasons_of(request, names),
        asked=request.get("patientInstruction"),
        deadline=deadline,
        deadline_iso=deadline_iso,
        deadline_relative=_near(end, display),
        overdue=_overdue(task, display),
        received=received,
        received_iso=received_iso,
        owner=_ref(task, "owner"),
        outcome=_outcome(task),
    )
