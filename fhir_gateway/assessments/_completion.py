"""A QuestionnaireResponse completes the measurement it answers.

When a response of an instrument is stored for a patient (status ``completed`` or ``amended``) and
one of the patient's open measurement Tasks asks for that Questionnaire in a window that holds the
response's ``authored`` time, that Task becomes ``completed`` with the response as its ``output``,
written through the FHIR service with the rights of whoever wrote the response (someone who may
not update Tasks leaves it open for the case team). The Task whose window ends first wins.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import clock
from fhir_gateway.assessments._mbc_codes import SDC_TEMP, bare
from fhir_gateway.assessments._schedule import OPEN, is_measurement, questionnaire_of
from fhir_gateway.context import Caller
from fhir_gateway.errors import NotFound
from fhir_gateway.hooks import WriteEvent
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.store.repository import StoredResource

__all__ = ["on_response", "due_task_for", "complete"]

_ANSWERED = frozenset({"completed", "amended"})


def _instant(text: Any) -> datetime | None:
    if not isinstance(text, str) or len(text) < 10:
        return None
    try:
        value = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return value if value.tzinfo else None


def _holds(task: dict[str, Any], at: datetime) -> bool:
    period = (task.get("restriction") or {}).get("period") or {}
    start, end = _instant(period.get("start")), _instant(period.get("end"))
    return (start is None or start <= at) and (end is None or at <= end)


def due_task_for(tasks: list[dict[str, Any]], response: dict[str, Any]) -> dict[str, Any] | None:
    """The open measurement Task ``response`` answers (pure): same Questionnaire, ``authored``
    inside its window; the one whose window ends first."""
    authored = _instant(response.get("authored"))
    wanted = bare(response.get("questionnaire"))
    if authored is None or not wanted:
        return None
    fitting = [
        t
        for t in tasks
        if is_measurement(t)
        and t.get("status") in OPEN
        and t.get("status") != "draft"
        and questionnaire_of(t) == wanted
        and _holds(t, authored)
    ]
    return min(fitting, key=_window_end) if fitting else None


def _window_end(task: dict[str, Any]) -> str:
    return str(((task.get("restriction") or {}).get("period") or {}).get("end") or "")


def complete(task: dict[str, Any], response_ref: str) -> dict[str, Any]:
    output = {
        "type": {"coding": [{"system": SDC_TEMP, "code": "questionnaire-response"}]},
        "valueReference": {"reference": response_ref},
    }
    return {
        **task,
        "status": "completed",
        "lastModified": clock.to_instant(clock.now()),
        "output": [*(task.get("output") or []), output],
    }


def _may_update(session: Session, caller: Caller, task: dict[str, Any]) -> bool:
    if not caller.can("Task", "u"):
        return False
    try:
        svc.read(session, "Task", str(task["id"]), caller)
    except NotFound:
        return False
    return True


def _canonical(session: Session, response: dict[str, Any]) -> str:
    """The response's Questionnaire as a canonical URL (it may name ``Questionnaire/<id>``)."""
    named = bare(response.get("questionnaire"))
    if named.startswith("Questionnaire/"):
        return str((lookup.read(session, named) or {}).get("url") or named)
    return named


def on_response(event: WriteEvent, stored: StoredResource | None) -> None:
    if stored is None or stored.deleted or stored.content.get("status") not in _ANSWERED:
        return
    response = stored.content
    patient = (response.get("subject") or {}).get("reference") or ""
    if not patient.startswith("Patient/"):
        return
    tasks = lookup.search(
        event.session,
        "Task",
        [("patient", patient), ("code", f"{SDC_TEMP}|complete-questionnaire")],
    )
    task = due_task_for(tasks, {**response, "questionnaire": _canonical(event.session, response)})
    if task is None or not _may_update(event.session, event.caller, task):
        return
    svc.update(
        event.session,
        "Task",
        str(task["id"]),
        complete(task, f"QuestionnaireResponse/{response['id']}"),
        event.caller,
    )
