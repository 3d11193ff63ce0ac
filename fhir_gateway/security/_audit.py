"""The audit trail: one AuditEvent (IHE Basic Audit Log Patterns) per request and per token.

Each event says who (the client, its organisation, its network address), what (the interaction
and the resource or query), which patient (when the request names one: ``Patient/id``, or a
``patient``/``subject`` parameter) and the outcome (0 success, 4 refused or invalid, 8 failed).

The request does not wait for the audit: it queues what happened and when (the event itself is
built on the writer thread), and one writer thread stores what gathered in 0.2 s as AuditEvent
resources in one batch (so admins search them like any other: ``AuditEvent?patient=…``,
``?altid=client``, ``?date=ge…``, ``?outcome=4``). Stored in bulk with the rows the repository
writes for a new resource (``_audit_store``), never through the API's write path: no one can
update or delete them through the API (see ``_guard``).
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from functools import partial
from typing import Any
from urllib.parse import parse_qsl

from fhir_gateway import clock
from fhir_gateway.context import Caller
from fhir_gateway.security._audit_store import EventRows
from fhir_gateway.store.db import Database

__all__ = ["Auditor", "Interaction", "interaction_of", "request_event", "token_event"]

log = logging.getLogger("fhir_gateway.audit")

_BALP = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/"
_REST = {
    "system": "http://terminology.hl7.org/CodeSystem/audit-event-type",
    "code": "rest",
    "display": "RESTful Operation",
}
_LOGIN = {
    "system": "http://dicom.nema.org/resources/ontology/DCM",
    "code": "110114",
    "display": "User Authentication",
}
_INTERACTION = "http://hl7.org/fhir/restful-interaction"
_CLIENT_ID = "urn:ietf:params:oauth:client-id"
_PATIENT_PARAMS = ("patient", "subject", "for", "beneficiary")
_BATCH = 500
_LINGER = (
    0.2  # seconds the writer gathers events before it stores them (flush and close cut it short)
)


@dataclass(frozen=True, slots=True)
class Interaction:
    code: str  # restful-interaction code (read, search-type, create, …) or an operation name
    action: str  # C R U D E
    target: str | None  # Type/id or Type, when the path names one
    profile: str


_PROFILES = {
    "C": "IHE.BasicAudit.Create",
    "R": "IHE.BasicAudit.Read",
    "U": "IHE.BasicAudit.Update",
    "D": "IHE.BasicAudit.Delete",
    "E": "IHE.BasicAudit.Query",
}


def interaction_of(method: str, path: str) -> Interaction:
    """Which FHIR interaction a request is, from its method and path alone (no parsing of bodies)."""
    parts = [p for p in path.split("/") if p]
    n = len(parts)
    if n == 0:
        code, action = ("transaction", "E") if method == "POST" else ("search-system", "E")
    elif parts[0].startswith("$") or parts[0] in ("hl7v2", "inbox"):
        code, action = ((parts[0].lstrip("$") or "operation"), "C" if method == "POST" else "R")
    elif parts[0] == "_history":
        code, action = "history-system", "R"
    elif n == 1:
        code, action = {
            "GET": ("search-type", "E"),
            "POST": ("create", "C"),
            "PUT": ("update", "U"),
            "PATCH": ("patch", "U"),
            "DELETE": ("delete", "D"),
        }.get(method, (method.lower(), "E"))
    elif parts[1] == "_search":
        code, action = "search-type", "E"
    elif parts[1] == "_history":
        code, action = "history-type", "R"
    elif n >= 3 and parts[2] == "_history":
        code, action = ("vread", "R") if n >= 4 else ("history-instance", "R")
    else:
        code, action = {
            "GET": ("read", "R"),
            "PUT": ("update", "U"),
            "PATCH": ("patch", "U"),
            "DELETE": ("delete", "D"),
        }.get(method, (method.lower(), "E"))
    target = "/".join(parts[:2]) if n >= 1 and not parts[0].startswith(("$", "_")) else None
    return Interaction(code, action, target, _BALP + _PROFILES[action])


def _patient_of(target: str | None, query: str) -> str | None:
    if target and target.startswith("Patient/"):
        return target
    for name, value in parse_qsl(query):
        if name.split(":")[0] in _PATIENT_PARAMS and value:
            ref = value.split("/")[-2:] if "/" in value else ["Patient", value]
            if ref[0] == "Patient":
                return f"Patient/{ref[1]}"
    return None


def _outcome(status: int) -> str:
    return "0" if status < 400 else "4" if status < 500 else "8"


def _agents(
    caller: Caller | None, claimed: str | None, address: str | None
) -> list[dict[str, Any]]:
    client_id = caller.client_id if caller is not None else claimed
    who: dict[str, Any] = {"display": client_id or "unauthenticated"}
    if client_id:
        who["identifier"] = {"system": _CLIENT_ID, "value": client_id}
    agent: dict[str, Any] = {
        "type": {
            "coding": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/v3-ParticipationType",
                    "code": "IRCP",
                }
            ]
        },
        "who": who,
        "requestor": True,
    }
    if client_id:
        agent["altId"] = client_id
    if caller is not None:
        agent["role"] = [{"text": caller.role}]
    if address:
        agent["network"] = {"address": address, "type": "2"}
    agents = [agent]
    if caller is not None and caller.organization:
        agents.append({"who": {"reference": caller.organization}, "requestor": False})
    return agents


def _event(
    kind: dict[str, str],
    subtype: str,
    action: str,
    profile: str,
    status: int,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    return {
        "resourceType": "AuditEvent",
        "meta": {"profile": [profile]},
        "type": dict(kind),
        "subtype": [{"system": _INTERACTION, "code": subtype}],
        "action": action,
        "recorded": clock.to_instant(recorded or clock.now()),
        "outcome": _outcome(status),
        "outcomeDesc": str(status),
        "source": {
            "observer": {"display": "fhir-gateway"},
            "type": [
                {
                    "system": "http://terminology.hl7.org/CodeSystem/security-source-type",
                    "code": "4",
                }
            ],
        },
    }


def request_event(
    *,
    method: str,
    path: str,
    query: str,
    status: int,
    caller: Caller | None,
    address: str | None,
    recorded: datetime | None = None,
) -> dict[str, Any]:
    what = interaction_of(method, path)
    event = _event(_REST, what.code, what.action, what.profile, status, recorded)
    event["agent"] = _agents(caller, None, address)
    entities: list[dict[str, Any]] = []
    patient = _patient_of(what.target, query)
    if patient:
        entities.append(
            {
                "what": {"reference": patient},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "1",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "1",
                },
            }
        )
    if what.target and what.target != patient and "/" in what.target:
        entities.append(
            {
                "what": {"reference": what.target},
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
            }
        )
    if query or what.action == "E":
        # A query as text, never base64 of secrets: tokens travel in headers, not in URLs.
        entities.append(
            {
                "type": {
                    "system": "http://terminology.hl7.org/CodeSystem/audit-entity-type",
                    "code": "2",
                },
                "role": {
                    "system": "http://terminology.hl7.org/CodeSystem/object-role",
                    "code": "24",
                },
                "description": f"{method} {path}" + (f"?{query}" if query else ""),
            }
        )
    if entities:
        event["entity"] = entities
    return event


def token_event(
    *, client_id: str | None, caller: Caller | None, status: int, address: str | None
) -> dict[str, Any]:
    event = _event(
        _LOGIN, "token", "E", _BALP + "IHE.BasicAudit.SAMLaccessTokenUse.Minimal", status
    )
    event["subtype"] = [
        {
            "system": "http://fhir-gateway.org/fhir/CodeSystem/audit-subtype",
            "code": "token-issued" if status < 400 else "token-refused",
        }
    ]
    event["agent"] = _agents(caller, client_id, address)
    return event


Queued = dict[str, Any] | Callable[[], dict[str, Any]]


class Auditor:
    """Queues events; one daemon thread stores them in batches. ``flush()`` waits for the queue."""

    def __init__(self, database: Database, *, enabled: bool = True) -> None:
        self.database = database
        self.enabled = enabled
        self._queue: queue.SimpleQueue[Queued | threading.Event | None] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._hurry = threading.Event()  # set by flush and close: store what is queued now
        self._rows = EventRows()  # the writer thread's alone

    def record(self, event: Queued) -> None:
        """Queue an event, or a function that builds one (called on the writer thread)."""
        if not self.enabled:
            return
        self._ensure_thread()
        self._queue.put(event)

    def record_request(
        self,
        *,
        method: str,
        path: str,
        query: str,
        status: int,
        caller: Caller | None,
        address: str | None,
    ) -> None:
        """The request's event, built on the writer thread: the request only notes the time."""
        if self.enabled:
            self.record(
                partial(
                    request_event,
                    method=method,
                    path=path,
                    query=query,
                    status=status,
                    caller=caller,
                    address=address,
                    recorded=clock.now(),
                )
            )

    def flush(self, timeout: float = 30.0) -> None:
        if self._thread is None:
            return
        done = threading.Event()
        self._queue.put(done)
        self._hurry.set()
        done.wait(timeout)

    def close(self) -> None:
        thread = self._thread
        if thread is None:
            return
        self._queue.put(None)
        self._hurry.set()
        thread.join(timeout=30)
        self._thread = None

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._start_lock:
            if self._thread is None:
                self._thread = threading.Thread(
                    target=self._run, name="fhir-gateway-audit", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            batch, waiters, stop = self._collect()
            self._store(batch)
            for waiter in waiters:
                waiter.set()
            if stop:
                return

    def _collect(self) -> tuple[list[Queued], list[threading.Event], bool]:
        """The next batch: what has arrived _LINGER after its first event (at most _BATCH), or
        up to someone waiting for the queue (flush) or its end (stop). The writer sleeps rather
        than wake for every event, as each wake-up takes the interpreter lock from requests, and
        one commit for many events costs less than one each."""
        batch: list[Queued] = []
        item = self._queue.get()
        if (
            item is not None
            and not isinstance(item, threading.Event)
            and self._queue.qsize() < _BATCH
        ):
            self._hurry.wait(_LINGER)
        self._hurry.clear()
        while True:
            if item is None:
                return batch, [], True
            if isinstance(item, threading.Event):
                return batch, [item], False
            batch.append(item)
            if len(batch) >= _BATCH:
                return batch, [], False
            try:
                item = self._queue.get_nowait()
            except queue.Empty:
                return batch, [], False

    def _store(self, batch: list[Queued]) -> None:
        events = []
        for item in batch:
            try:
                events.append(item() if callable(item) else item)
            except Exception:  # one event that cannot be built must not cost the others
                log.exception("could not build an audit event")
        if not events:
            return
        try:
            with self.database.session() as session:
                self._rows.store(session, events)
        except Exception:  # the trail must not take the server down; say so loudly
            log.exception("could not store %d audit events", len(events))
