"""How the patient can be reached (pure): the Patient.telecom entries a configured channel can
use, the patient's own ranking first (``rank``, lowest first), then the deployment's order."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from fhir_gateway.contacts._codes import EMAIL, SMS

__all__ = ["Address", "address_of"]


@dataclass(frozen=True, slots=True)
class Address:
    medium: str  # email | sms
    value: str


def _current(telecom: dict[str, Any], at: datetime) -> bool:
    if telecom.get("use") == "old" or not isinstance(telecom.get("value"), str):
        return False
    end = (telecom.get("period") or {}).get("end")
    return not end or str(end) >= at.date().isoformat()


def _medium(telecom: dict[str, Any]) -> str | None:
    system = telecom.get("system")
    if system == "email" and "@" in telecom["value"]:
        return EMAIL
    if system == "sms" or (system == "phone" and telecom.get("use") == "mobile"):
        return SMS
    return None


def address_of(patient: dict[str, Any], media: list[str], at: datetime) -> Address | None:
    """The first usable address, or None when no configured medium can reach the patient."""
    found = []
    for position, telecom in enumerate(patient.get("telecom") or []):
        if not isinstance(telecom, dict) or not _current(telecom, at):
            continue
        medium = _medium(telecom)
        if medium is None or medium not in media:
            continue
        rank = telecom.get("rank") if isinstance(telecom.get("rank"), int) else 1_000_000
        found.append(
            (rank, media.index(medium), position, Address(medium, telecom["value"].strip()))
        )
    return min(found)[3] if found else None
