"""Da Vinci notification message Bundles → what the intake applies (pure)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest

from adapters.notifications import (
    InvalidNotification,
    UnsupportedNotification,
    read_notification,
    response_message,
)

DAVINCI = Path(__file__).resolve().parents[2] / "data" / "fhir" / "davinci"


def _load(name: str) -> dict[str, Any]:
    return orjson.loads((DAVINCI / name).read_bytes())


def test_discharge_notification_becomes_conditional_updates_keyed_on_identifiers() -> None:
    note = read_notification(_load("discharge-notification-message-bundle-01.json"))
    assert note.event == "notification-discharge"
    assert note.message_id == "df0bb058-e0bb-11ea-a11a-864d2e68a322"
    assert (
        note.idempotency_key
        == "fhir-message|https://example.org/Endpoints/P456|df0bb058-e0bb-11ea-a11a-864d2e68a322"
    )
    urls = {e["resource"]["resourceType"]: e["request"]["url"] for e in note.transaction["entry"]}
    creates = {
        e["resource"]["resourceType"]: e["request"].get("ifNoneExist")
        for e in note.transaction["entry"]
        if e["request"]["method"] == "POST"
    }
    assert (
        urls["Patient"]
        == "Patient?identifier=http://example.org/fhir/mrn|06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"
    )
    assert (
        creates["Patient"]
        == "identifier=http://example.org/fhir/mrn|06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"
    )
    assert urls["Encounter"].startswith("Encounter?identifier=http://example.org|")
    assert urls["Location"].startswith("Location/")  # no identifier: a stable id instead
    assert "MessageHeader" not in urls
    assert note.patient_key == "http://example.org/fhir/mrn|06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"


def test_resources_without_identifier_keep_the_same_id_when_sent_again() -> None:
    first = read_notification(_load("discharge-notification-message-bundle-01.json"))
    again = read_notification(_load("discharge-notification-message-bundle-01.json"))
    ids = [e["request"]["url"] for e in first.transaction["entry"]]
    assert ids == [e["request"]["url"] for e in again.transaction["entry"]]


def test_bundle_identifier_is_the_key_when_present() -> None:
    bundle = _load("admit-notification-message-bundle-01.json")
    bundle["identifier"] = {"system": "urn:ietf:rfc:3986", "value": "urn:uuid:1"}
    assert read_notification(bundle).idempotency_key == "fhir-bundle|urn:ietf:rfc:3986|urn:uuid:1"


def test_relative_references_between_entries_point_at_their_full_url() -> None:
    bundle = _load("admit-notification-message-bundle-01.json")
    enc = next(e for e in bundle["entry"] if e["resource"]["resourceType"] == "Encounter")
    enc["resource"]["subject"]["reference"] = "Patient/06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"
    note = read_notification(bundle)
    out = next(e for e in note.transaction["entry"] if e["resource"]["resourceType"] == "Encounter")
    assert (
        out["resource"]["subject"]["reference"] == "urn:uuid:06e1f0dd-5fbe-4480-9bb4-6b54ec02d31b"
    )


@pytest.mark.parametrize(
    ("change", "error"),
    [
        (lambda b: b.update(type="transaction"), InvalidNotification),
        (lambda b: b.update(entry=[]), InvalidNotification),
        (lambda b: b["entry"].reverse(), InvalidNotification),
        (
            lambda b: b["entry"][0]["resource"]["eventCoding"].update(code="notification-lab"),
            UnsupportedNotification,
        ),
        (lambda b: b["entry"][0]["resource"].pop("source"), InvalidNotification),
    ],
)
def test_unacceptable_messages_give_a_typed_error(change: Any, error: type[Exception]) -> None:
    bundle = copy.deepcopy(_load("admit-notification-message-bundle-01.json"))
    change(bundle)
    with pytest.raises(error):
        read_notification(bundle)


def test_response_names_the_request_header() -> None:
    note = read_notification(_load("admit-notification-message-bundle-01.json"))
    answer = response_message(
        note, "ok", timestamp="2024-01-01T00:00:00Z", receiver_endpoint="urn:me"
    )
    header = answer["entry"][0]["resource"]
    assert answer["type"] == "message"
    assert header["response"] == {"identifier": note.message_id, "code": "ok"}
    assert header["destination"] == [{"endpoint": "https://example.org/Endpoints/P456"}]
