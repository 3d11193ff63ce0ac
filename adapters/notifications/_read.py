"""A Da Vinci Unsolicited Notification (a FHIR ``message`` Bundle) → what the gateway applies.

The message's resources become a ``transaction`` Bundle: a resource with a business identifier
is matched by it (``POST`` with ``ifNoneExist`` then ``PUT Type?identifier=system|value``), one
without gets an id derived from the sender's endpoint and its own id, so a re-sent or updated
notification about the same thing changes the same resource. ``urn:uuid`` fullUrls are kept for
references. A discharge notification's MedicationRequests and MedicationStatements are its
discharge medications (``_medications``).
"""

from __future__ import annotations

import copy
import uuid
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from ._errors import InvalidNotification, UnsupportedNotification
from ._medications import discharge_encounter, link_discharge_medication

__all__ = ["EVENT_SYSTEM", "EVENTS", "Notification", "read_notification"]

EVENT_SYSTEM = "http://hl7.org/fhir/us/davinci-alerts/CodeSystem/notification-event"
EVENTS = frozenset({"notification-admit", "notification-discharge", "notification-transfer"})
_NAMESPACE = uuid.UUID("5b0c3a57-4a7e-4b8e-9d0e-6c1f2f6a0d11")
_MR = "MR"
_DISCHARGE = "notification-discharge"


@dataclass(slots=True)
class Notification:
    event: str
    message_id: str
    source_endpoint: str
    bundle_identifier: str | None  # "system|value"
    timestamp: str | None
    patient_key: str | None  # "system|value" of the focus patient
    transaction: dict[str, Any]
    header: dict[str, Any] = field(repr=False, default_factory=dict)
    sources: tuple[int, ...] = ()  # per transaction entry: the index of its message entry

    def message_entry(self, transaction_index: int) -> int | None:
        return (
            self.sources[transaction_index] if 0 <= transaction_index < len(self.sources) else None
        )

    @property
    def idempotency_key(self) -> str:
        """Bundle.identifier when present, else MessageHeader.source.endpoint + MessageHeader.id."""
        if self.bundle_identifier:
            return f"fhir-bundle|{self.bundle_identifier}"
        return f"fhir-message|{self.source_endpoint}|{self.message_id}"


def read_notification(bundle: Any) -> Notification:
    if not isinstance(bundle, dict) or bundle.get("resourceType") != "Bundle":
        raise InvalidNotification("$process-message takes a Bundle")
    if bundle.get("type") != "message":
        raise InvalidNotification(
            f"Bundle.type must be message, not {bundle.get('type')!r}", expression="Bundle.type"
        )
    entries = bundle.get("entry")
    if not isinstance(entries, list) or not entries:
        raise InvalidNotification("The message Bundle has no entries", expression="Bundle.entry")
    header = _header(entries)
    event = _event(header)
    endpoint = str(_object(header.get("source"), "MessageHeader.source").get("endpoint") or "")
    if not endpoint:
        raise InvalidNotification(
            "MessageHeader.source.endpoint is required", expression="MessageHeader.source.endpoint"
        )
    message_id = str(header.get("id") or "")
    ident = _object(bundle.get("identifier"), "Bundle.identifier")
    bundle_identifier = (
        f"{ident.get('system', '')}|{ident['value']}" if ident.get("value") else None
    )
    if not message_id and not bundle_identifier:
        raise InvalidNotification(
            "The message needs MessageHeader.id or Bundle.identifier", expression="MessageHeader.id"
        )
    positions = [
        i
        for i, e in enumerate(entries)
        if i and isinstance(e, dict) and isinstance(e.get("resource"), dict)
    ]
    resources = [entries[i] for i in positions]
    for index, entry in zip(positions, resources, strict=True):
        _check_entry(entry, f"Bundle.entry[{index}]")
    encounter = discharge_encounter(header, resources) if event == _DISCHARGE else None
    transaction, sources = _transaction(
        resources, positions, endpoint, discharge=event == _DISCHARGE, encounter=encounter
    )
    return Notification(
        event=event,
        message_id=message_id,
        source_endpoint=endpoint,
        bundle_identifier=bundle_identifier,
        timestamp=bundle.get("timestamp"),
        patient_key=_patient_key(resources),
        transaction=transaction,
        header=header,
        sources=sources,
    )


def _object(value: Any, expression: str) -> dict[str, Any]:
    """An optional JSON object: absent is empty; anything else but an object is refused."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidNotification(f"{expression} must be an object", expression=expression)
    return value


def _check_entry(entry: dict[str, Any], expression: str) -> None:
    """Refuse shapes the reader would otherwise trip over (the transaction is validated later)."""
    resource = entry["resource"]
    if not isinstance(entry.get("fullUrl", ""), str):
        raise InvalidNotification(
            f"{expression}.fullUrl must be a string", expression=f"{expression}.fullUrl"
        )
    for key in ("resourceType", "id"):
        if not isinstance(resource.get(key, ""), str):
            raise InvalidNotification(
                f"{expression}.resource.{key} must be a string",
                expression=f"{expression}.resource.{key}",
            )
    if not isinstance(resource.get("meta", {}), dict | None):
        raise InvalidNotification(
            f"{expression}.resource.meta must be an object",
            expression=f"{expression}.resource.meta",
        )
    identifiers = resource.get("identifier") or []
    if not isinstance(identifiers, list):
        raise InvalidNotification(
            f"{expression}.resource.identifier must be an array",
            expression=f"{expression}.resource.identifier",
        )
    for ident in identifiers:
        if isinstance(ident, dict):
            coding = _object(ident.get("type"), f"{expression}.resource.identifier.type").get(
                "coding"
            )
            if not isinstance(coding or [], list) or not all(
                isinstance(c, dict) for c in coding or []
            ):
                raise InvalidNotification(
                    f"{expression}.resource.identifier.type.coding must be an array of objects",
                    expression=f"{expression}.resource.identifier.type.coding",
                )


def _header(entries: list[Any]) -> dict[str, Any]:
    first = entries[0].get("resource") if isinstance(entries[0], dict) else None
    if not isinstance(first, dict) or first.get("resourceType") != "MessageHeader":
        raise InvalidNotification(
            "The first entry of a message must be its MessageHeader", expression="Bundle.entry[0]"
        )
    return first


def _event(header: dict[str, Any]) -> str:
    coding = _object(header.get("eventCoding"), "MessageHeader.eventCoding")
    code = coding.get("code")
    if not code:
        raise InvalidNotification(
            "MessageHeader.eventCoding.code is required", expression="MessageHeader.eventCoding"
        )
    if (
        not isinstance(code, str)
        or code not in EVENTS
        or coding.get("system") not in (None, EVENT_SYSTEM)
    ):
        raise UnsupportedNotification(
            f"Event {code!r} is not a Da Vinci admit, discharge or transfer notification",
            expression="MessageHeader.eventCoding",
        )
    return str(code)


def _patient_key(entries: list[dict[str, Any]]) -> str | None:
    for entry in entries:
        res = entry["resource"]
        if res.get("resourceType") == "Patient":
            ident = _match_identifier(res)
            return f"{ident.get('system', '')}|{ident['value']}" if ident else None
    return None


def _match_identifier(resource: dict[str, Any]) -> dict[str, Any] | None:
    """The identifier to match on: the MR-typed one for a Patient, else the first usable one."""
    usable = [
        i
        for i in resource.get("identifier") or []
        if isinstance(i, dict) and i.get("system") and i.get("value")
    ]
    if resource.get("resourceType") == "Patient":
        for ident in usable:
            codes = {c.get("code") for c in (ident.get("type") or {}).get("coding") or []}
            if _MR in codes:
                return ident
    return usable[0] if usable else None


def _transaction(
    entries: list[dict[str, Any]],
    positions: list[int],
    endpoint: str,
    *,
    discharge: bool = False,
    encounter: str | None = None,
) -> tuple[dict[str, Any], tuple[int, ...]]:
    local = {
        f"{e['resource'].get('resourceType')}/{e['resource'].get('id')}": e.get("fullUrl")
        for e in entries
        if e["resource"].get("id") and e.get("fullUrl")
    }
    out: list[dict[str, Any]] = []
    sources: list[int] = []
    for position, entry in zip(positions, entries, strict=True):
        resource = _rewrite_local(copy.deepcopy(entry["resource"]), local)
        if discharge:  # discharge medications belong to the discharge
            link_discharge_medication(resource, encounter)
        made = _entries(entry.get("fullUrl"), resource, endpoint)
        out += made
        sources += [position] * len(made)
    return {"resourceType": "Bundle", "type": "transaction", "entry": out}, tuple(sources)


def _entries(full_url: str | None, resource: dict[str, Any], endpoint: str) -> list[dict[str, Any]]:
    """A resource with a business identifier: a conditional create (which fixes the id that
    references to its fullUrl resolve to) plus a conditional update with the message's content.
    One without: an update of a stable id derived from the sender and its own id."""
    rtype = resource.get("resourceType", "")
    original_id = resource.pop("id", None)
    meta = {
        k: v
        for k, v in (resource.pop("meta", None) or {}).items()
        if k not in ("versionId", "lastUpdated")
    }
    if meta:
        resource["meta"] = meta
    ident = _match_identifier(resource)
    if ident is None:
        stable = str(uuid.uuid5(_NAMESPACE, f"{endpoint}|{rtype}|{original_id or full_url}"))
        entry: dict[str, Any] = {
            "resource": {**resource, "id": stable},
            "request": {"method": "PUT", "url": f"{rtype}/{stable}"},
        }
        return [{"fullUrl": full_url, **entry} if full_url else entry]
    criteria = (
        f"identifier={quote(ident['system'], safe=':/')}|{quote(str(ident['value']), safe='')}"
    )
    create: dict[str, Any] = {
        "resource": resource,
        "request": {"method": "POST", "url": rtype, "ifNoneExist": criteria},
    }
    if full_url:
        create["fullUrl"] = full_url
    update = {
        "resource": copy.deepcopy(resource),
        "request": {"method": "PUT", "url": f"{rtype}?{criteria}"},
    }
    return [create, update]


def _rewrite_local(node: Any, local: dict[str, str | None]) -> Any:
    """Relative references to resources of the same message point at their fullUrl."""
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "reference" and isinstance(value, str) and local.get(value):
                node[key] = local[value]
            else:
                _rewrite_local(value, local)
    elif isinstance(node, list):
        for item in node:
            _rewrite_local(item, local)
    return node
