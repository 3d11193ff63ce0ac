"""What the intake tells other concerns about each message it applied, inside that message's
transaction (after its Bundle and its discharges): the ``message_applied`` hook point
(``rules.on_message_applied(hook)``), ``hook(session, MessageApplied)`` for every message. The monitors use it to raise a work item for an
admission or discharge that created no Encounter."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from fhir_gateway import hooks

__all__ = ["MessageApplied", "AppliedHook", "announce"]


@dataclass(frozen=True, slots=True)
class MessageApplied:
    source: str  # hl7v2 | fhir-message
    event: str  # A01, A03, …, or the FHIR message event
    sender: str | None
    control_id: str | None  # MSH-10, or the FHIR message's id
    message_id: int  # the inbox row
    bundle: dict[str, Any]  # the converted transaction Bundle, as applied
    written: tuple[tuple[str, str], ...]  # (type, id) of what it wrote or matched

    def has(self, res_type: str) -> bool:
        return any(
            (e.get("resource") or {}).get("resourceType") == res_type
            for e in self.bundle.get("entry") or []
        )

    def first(self, res_type: str) -> str | None:
        return next((f"{t}/{i}" for t, i in self.written if t == res_type), None)


AppliedHook = Callable[[Session, MessageApplied], None]


def announce(session: Session, message: MessageApplied) -> None:
    hooks.rules_of(session).run("message_applied", session, message)
