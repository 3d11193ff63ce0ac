"""What each intake door may write: the HL7 adapter's output stays within the clinical types the
HL7 intake writes; a notification's types are sorted into stored, refused and skipped."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from adapters.hl7v2 import HL7Error, convert
from fhir_gateway.services import intake_fhir, intake_hl7
from fhir_gateway.settings import Settings

DATA = Path(__file__).resolve().parents[2] / "data"
MESSAGES = [p for p in (DATA / "hl7v2").rglob("*") if p.is_file() and p.suffix == ".hl7"]


@pytest.mark.parametrize("path", MESSAGES, ids=lambda p: p.name)
def test_the_hl7_adapter_writes_only_what_the_hl7_intake_accepts(path: Path) -> None:
    intake_hl7.check_types(convert(path.read_bytes()).bundle)


def test_an_unexpected_type_in_a_converted_bundle_is_not_applied() -> None:
    bundle = {
        "entry": [
            {"request": {"method": "PUT", "url": "Patient/1"}},
            {"request": {"method": "POST", "url": "Consent"}},
        ]
    }
    with pytest.raises(HL7Error, match="Consent entry"):
        intake_hl7.check_types(bundle)


def test_the_categories_of_a_notification_do_not_overlap() -> None:
    assert not intake_fhir.STORED & intake_fhir.REFUSED
    assert {
        "Consent",
        "Subscription",
        "AuditEvent",
        "Provenance",
        "Endpoint",
        "Task",
    } <= intake_fhir.REFUSED


def test_a_skipped_entry_leaves_no_dangling_reference() -> None:
    bundle = orjson.loads(
        (
            DATA / "fhir" / "davinci-alerts" / "admit-notification-message-bundle-01.json"
        ).read_bytes()
    )
    encounter = bundle["entry"][1]["resource"]
    bundle["entry"].append(
        {
            "fullUrl": "urn:uuid:obs-1",
            "resource": {
                "resourceType": "Observation",
                "status": "final",
                "code": {"text": "weight"},
            },
        }
    )
    encounter["reasonReference"] = [{"reference": "urn:uuid:obs-1"}]
    ident = intake_fhir.identify(
        orjson.dumps(bundle), Settings(database_url="sqlite://", auth_enabled=False)
    )
    assert ident.error is None and any("Observation" in w for w in ident.warnings)
    assert ident.note is not None and b"obs-1" not in orjson.dumps(ident.note.transaction)
