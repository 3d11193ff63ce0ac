"""A hospital client submits messages only in the name of the senders registered to it."""

from __future__ import annotations

from intake_helpers import ack_fields, adt
from security_helpers import bearer, get_token, register, secure_client

HL7 = {"Content-Type": "x-application/hl7-v2+er7"}


def test_a_hospital_cannot_send_in_another_hospitals_name(database, database_url):  # type: ignore[no-untyped-def]
    with secure_client(database, database_url) as client:
        hospital = register(
            database, "hospital", ["system/*.cruds"], "Organization/st-marys", senders=["ADT1|GOOD"]
        )
        headers = {**bearer(get_token(client, hospital)), **HL7}
        own = client.post(
            "/hl7v2", content=adt("A01", "OWN-1", sender="ADT1^GOOD"), headers=headers
        )
        assert own.status_code == 200 and ack_fields(own.content)["code"] == "AA"
        forged = client.post(
            "/hl7v2", content=adt("A01", "FORGED-1", sender="ADT9^OTHER"), headers=headers
        )
        assert forged.status_code == 400
        fields = ack_fields(forged.content)
        assert fields["code"] == "AR" and fields["err"] and fields["control_id"] == "FORGED-1"
        assert "not registered to send for ADT9" in forged.text


def test_over_mllp_the_senders_of_registered_hospitals_form_the_allow_list(database, settings):  # type: ignore[no-untyped-def]
    from fhir_gateway.services.ingest import Intake

    intake = Intake(database, settings)
    assert (
        intake.receive_hl7(adt("A01", "ANY-1", sender="ADT7^ANY"), channel="mllp").code == "AA"
    )  # no list yet
    register(
        database, "hospital", ["system/*.cruds"], "Organization/st-marys", senders=["ADT1|GOOD"]
    )
    assert intake.receive_hl7(adt("A01", "GOOD-1", sender="ADT1^GOOD"), channel="mllp").code == "AA"
    refused = intake.receive_hl7(adt("A01", "ANY-2", sender="ADT7^ANY"), channel="mllp")
    assert refused.code == "AR" and b"is not registered" in refused.body


def test_a_sender_registered_to_a_hospital_passes_the_settings_allow_list(database, settings):  # type: ignore[no-untyped-def]
    from fhir_gateway.services.ingest import Intake

    intake = Intake(
        database,
        settings.model_copy(update={"sender_allowlist": {"ADT2|LISTED": "Organization/x"}}),
    )
    assert intake.receive_hl7(adt("A01", "REG-1", sender="ADT1^GOOD"), channel="mllp").code == "AR"
    register(
        database, "hospital", ["system/*.cruds"], "Organization/st-marys", senders=["ADT1|GOOD"]
    )
    assert intake.receive_hl7(adt("A01", "REG-2", sender="ADT1^GOOD"), channel="mllp").code == "AA"
