"""Discharge events and the ``discharge`` hook point the engines fill (``fhir_gateway.hooks``).

A discharge is an Encounter that reaches ``finished`` from another status in a transaction:
through the intake (an ADT^A03 or a Da Vinci ``notification-discharge``: any encounter class),
or through the REST API or a transaction Bundle (an inpatient encounter only). Every hook runs
inside that same transaction, so a plan is stored together with the discharge or not at all.

With no engine at the app's ``discharge`` point a discharge does nothing more than being
detected:

    unregister = rules.on_discharge(my_hook)      # my_hook(session, context) -> None

Detection is a write consequence on Encounter (``install(rules)``): each finished version a session
writes is remembered; the intake announces them after its Bundle, and a commit announces the ones
nobody announced yet (REST, transaction Bundles).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import hooks
from fhir_gateway.store import repository as repo
from fhir_gateway.store.repository import StoredResource

__all__ = [
    "DetectedDischarge",
    "DischargeHook",
    "INPATIENT_CLASSES",
    "on_discharge",
    "announce",
    "forget_writes",
    "install",
]

log = logging.getLogger("fhir_gateway.discharge")

# v3 ActCode classes that are inpatient stays (IMP and its specialisations).
INPATIENT_CLASSES = frozenset({"IMP", "ACUTE", "NONAC"})
_WRITES = "discharge.encounter_writes"


@dataclass(frozen=True, slots=True)
class DetectedDischarge:
    patient: str | None  # "Patient/id"
    encounter: str  # "Encounter/id"
    encounter_resource: dict[str, Any]
    source: str  # hl7v2 | fhir-message | rest
    event: str  # A03 | notification-discharge | encounter-finished
    message_id: int | None = None  # inbox row, for intake discharges
    sender: str | None = None
    zone: str = "UTC"  # the discharging facility's zone (deadlines count its calendar days)


DischargeHook = Callable[[Session, DetectedDischarge], None]


def on_discharge(session: Session, context: DetectedDischarge) -> None:
    """Hand one discharge to every hook at the session's ``discharge`` point, in order."""
    log.info(
        "discharge %s of %s (%s %s)",
        context.encounter,
        context.patient,
        context.source,
        context.event,
    )
    hooks.rules_of(session).run("discharge", session, context)


def forget_writes(session: Session) -> None:
    session.info.pop(_WRITES, None)


def announce(
    session: Session,
    *,
    source: str,
    event: str,
    any_class: bool = False,
    message_id: int | None = None,
    sender: str | None = None,
    zone: str = "UTC",
) -> list[DetectedDischarge]:
    """Fire ``on_discharge`` for each Encounter this session brought to ``finished``."""
    fired = []
    for res_id, version in session.info.pop(_WRITES, []):
        encounter = _finished_now(session, res_id, version, any_class)
        if encounter is None:
            continue
        context = DetectedDischarge(
            patient=(encounter.get("subject") or {}).get("reference"),
            encounter=f"Encounter/{res_id}",
            encounter_resource=encounter,
            source=source,
            event=event,
            message_id=message_id,
            sender=sender,
            zone=zone,
        )
        on_discharge(session, context)
        fired.append(context)
    return fired


def _finished_now(
    session: Session, res_id: str, version: int, any_class: bool
) -> dict[str, Any] | None:
    stored = repo.vread(session, "Encounter", res_id, version)
    if stored is None or stored.deleted or stored.content.get("status") != "finished":
        return None  # rolled back with a savepoint, or not a discharge
    if not any_class and (stored.content.get("class") or {}).get("code") not in INPATIENT_CLASSES:
        return None
    before = repo.vread(session, "Encounter", res_id, version - 1) if version > 1 else None
    if before is not None and not before.deleted and before.content.get("status") == "finished":
        return None
    return stored.content


# --- watching the writes of every session ---------------------------------------------------


def _record_write(event: hooks.WriteEvent, stored: StoredResource | None) -> None:
    """A consequence of every Encounter write: remember it; announce at the end of the Bundle
    (the intake) or at commit (REST), when the Conditions written beside it are stored too."""
    if stored is not None and not stored.deleted and stored.content.get("status") == "finished":
        event.session.info.setdefault(_WRITES, []).append((stored.res_id, stored.version_id))


def _announce_rest(session: Session) -> None:
    # before_commit also fires when a savepoint is released: wait for the real commit
    if session.in_nested_transaction() or not session.info.get(_WRITES):
        return
    announce(session, source="rest", event="encounter-finished")


def install(rules: hooks.Rules) -> None:
    """Watch Encounter writes and the commits of ``rules``' sessions."""
    rules.after_write("Encounter", _record_write)
    rules.on_session("before_commit", _announce_rest)
    rules.on_session("after_rollback", forget_writes)
