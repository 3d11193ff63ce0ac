"""The durable inbox: exactly once, in order, never older over newer, failures kept and
replayable, A40 merges, and the HTTP channel for raw HL7."""

from __future__ import annotations

import threading

import pytest
from intake_helpers import ack_fields, adt
from typer.testing import CliRunner

from fhir_gateway.errors import BusinessRule, Conflict
from fhir_gateway.services import (
    lookup,
)
from fhir_gateway.services.ingest import Intake
from fhir_gateway.store import inbox
from fhir_gateway.store.db import Database

MRN_SYSTEM = "urn:fhir-gateway:hl7v2:assigning-authority:HOSP"


def _patient(client, mrn: str) -> list[dict]:  # type: ignore[no-untyped-def]
    return [
        e["resource"]
        for e in client.get("/Patient", params={"identifier": f"{MRN_SYSTEM}|{mrn}"})
        .json()
        .get("entry", [])
    ]


def _encounter(client, visit: str = "V1") -> dict:  # type: ignore[no-untyped-def]
    found = client.get("/Encounter", params={"identifier": f"{MRN_SYSTEM}|{visit}"}).json()["entry"]
    assert len(found) == 1
    return found[0]["resource"]  # type: ignore[no-any-return]


def test_two_gateways_receiving_the_same_discharge_at_once_apply_it_once(
    database,
    database_url,
    settings,
    recorded_discharges,  # type: ignore[no-untyped-def]
) -> None:
    from fhir_gateway.app import install_rules

    other = Database(database_url, pool_size=4)  # a second gateway process: its own connections
    install_rules(settings, other)  # and its own rules
    gateways = [Intake(database, settings), Intake(other, settings)]
    message = adt("A03", "SAME-1")
    start = threading.Barrier(2)
    answers = [None, None]

    def receive(i: int) -> None:
        start.wait()
        answers[i] = gateways[i].receive_hl7(message)  # type: ignore[call-overload]

    threads = [threading.Thread(target=receive, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    other.dispose()
    assert [ack_fields(a.body)["code"] for a in answers] == ["AA", "AA"]  # type: ignore[union-attr]
    assert answers[0].body == answers[1].body  # type: ignore[union-attr]  # the original answer, twice
    assert sorted(a.status for a in answers) == ["duplicate", "processed"]  # type: ignore[union-attr]
    assert len(recorded_discharges) == 1  # one discharge, so one care plan later


def test_a_resend_gets_the_original_answer_and_is_recorded_as_duplicate(intake, database) -> None:  # type: ignore[no-untyped-def]
    first = intake.receive_hl7(adt("A01", "R-1"))
    again = intake.receive_hl7(adt("A01", "R-1"))
    assert again.body == first.body and again.duplicate
    rows = database.read(inbox.listing)
    assert [r.status for r in rows] == ["duplicate", "processed"]
    assert rows[0].duplicate_of == rows[1].id


def test_messages_of_one_patient_apply_in_the_order_received(intake, database, client) -> None:  # type: ignore[no-untyped-def]
    # The admit was received first but its connection stalled (or its process died) before it
    # was applied; the discharge arrives on another connection. The admit must go first.
    admit = adt("A01", "ORD-1", when="20240101080000")
    database.write(
        inbox.add,
        raw=admit,
        channel="mllp",
        kind="hl7v2",
        sender="ADT1|GOOD",
        control_id="ORD-1",
        message_key=inbox.key_hash("hl7v2|ADT1|GOOD|ORD-1"),
        patient_key=f"{MRN_SYSTEM}|MRN1",
        event="A01",
    )
    answer = intake.receive_hl7(
        adt("A03", "ORD-2", when="20240101080000")
    )  # same time: only order decides
    assert ack_fields(answer.body)["code"] == "AA"
    assert _encounter(client)["status"] == "finished"
    history = client.get(f"/Encounter/{_encounter(client)['id']}/_history").json()["entry"]
    assert [e["resource"]["status"] for e in reversed(history)] == ["in-progress", "finished"]
    assert database.read(inbox.count, status="received") == 0
    # the admit's own re-send now gets its (already sent) answer
    assert ack_fields(intake.receive_hl7(admit).body)["code"] == "AA"


def test_a_message_whose_first_attempt_conflicts_is_kept_once_and_applied_once(
    intake, database, client, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    # Recorded and applied in one transaction, a conflict undoes the record too; the message
    # then takes the two-step path: one inbox row, processed, and one patient.
    attempts: list[int] = []
    real = Intake._apply

    def conflicting_once(self, session, row, ident):  # type: ignore[no-untyped-def]
        attempts.append(row.id)
        if len(attempts) == 1:
            raise Conflict("a concurrent change")
        return real(self, session, row, ident)

    monkeypatch.setattr(Intake, "_apply", conflicting_once)
    answer = intake.receive_hl7(adt("A01", "CONFLICT-1"))
    assert ack_fields(answer.body)["code"] == "AA"
    assert len(attempts) == 2
    assert database.read(inbox.count) == database.read(inbox.count, status="processed") == 1
    assert len(_patient(client, "MRN1")) == 1
    assert ack_fields(intake.receive_hl7(adt("A01", "CONFLICT-1")).body)["code"] == "AA"
    assert database.read(inbox.count, status="duplicate") == 1


def test_an_older_message_never_overwrites_newer_data(intake, client, database) -> None:  # type: ignore[no-untyped-def]
    intake.receive_hl7(adt("A08", "NEW", family="NEWER", when="20240105000000"))
    old = intake.receive_hl7(adt("A08", "OLD", family="OLDER", when="20240101000000"))
    assert (
        ack_fields(old.body)["code"] == "AA"
    )  # accepted and kept, just not applied over newer data
    [patient] = _patient(client, "MRN1")
    assert patient["name"][0]["family"] == "NEWER"
    assert any(
        "newer than this message" in w for w in database.read(inbox.get, old.message_id).warnings
    )
    # a replay of the old message changes nothing either
    intake.replay(old.message_id)
    assert _patient(client, "MRN1")[0]["name"][0]["family"] == "NEWER"
    # while an older message about someone unknown still creates them
    intake.receive_hl7(adt("A01", "OLD-OTHER", mrn="MRN2", visit="V2", when="20200101000000"))
    assert len(_patient(client, "MRN2")) == 1


def _broken_care_plan_engine(session, context) -> None:  # type: ignore[no-untyped-def]
    raise BusinessRule("care-plan template missing")


def test_failed_message_is_listed_and_replays_once_fixed(
    intake, client, database, monkeypatch, database_url
) -> None:  # type: ignore[no-untyped-def]
    unregister = client.app.state.rules.on_discharge(_broken_care_plan_engine)
    try:
        answer = intake.receive_hl7(adt("A03", "FAIL-1"))
    finally:
        unregister()
    ack = ack_fields(answer.body)
    assert (ack["code"], ack["err"], ack["control_id"]) == ("AE", True, "FAIL-1")
    assert _patient(client, "MRN1") == []  # nothing half-applied
    listed = client.get("/inbox", params={"status": "failed"}).json()["messages"]
    assert [m["control_id"] for m in listed] == ["FAIL-1"]
    assert "care-plan template missing" in listed[0]["error"]["reason"]
    assert "AE" in client.get(f"/inbox/{answer.message_id}").json()["answer"]

    from fhir_gateway.cli import app as cli
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    runner = CliRunner()
    try:
        listing = runner.invoke(cli, ["inbox", "list", "--status", "failed"])
        assert "FAIL-1" in listing.output
        assert "FAIL-1" in runner.invoke(cli, ["inbox", "show", str(answer.message_id)]).output
        replayed = runner.invoke(cli, ["inbox", "replay", "--failed"])
        assert replayed.exit_code == 0, replayed.output
        assert "processed" in replayed.output
        assert runner.invoke(cli, ["inbox", "replay", str(answer.message_id)]).exit_code == 0
    finally:
        get_settings.cache_clear()
    assert _encounter(client)["status"] == "finished"
    assert client.get("/inbox", params={"status": "failed"}).json()["messages"] == []
    # replaying twice made no second version
    assert client.get(f"/Encounter/{_encounter(client)['id']}/_history").json()["total"] == 1
    # and the re-send of the original message now gets the new answer
    assert ack_fields(intake.receive_hl7(adt("A03", "FAIL-1")).body)["code"] == "AA"


def test_a40_merge_keeps_everything_on_the_survivor(intake, client) -> None:  # type: ignore[no-untyped-def]
    intake.receive_hl7(adt("A01", "M-1", mrn="OLD", visit="VOLD", family="SMITH"))
    intake.receive_hl7(adt("A01", "M-2", mrn="NEW", visit="VNEW", family="SMITH"))
    merge = adt(
        "A40", "M-3", mrn="NEW", family="SMITH", extra="MRG|OLD^^^HOSP^MR", when="20240102000000"
    )
    assert ack_fields(intake.receive_hl7(merge).body)["code"] == "AA"

    [survivor] = _patient(client, "NEW")
    assert _patient(client, "OLD") == [survivor]  # either identifier finds the survivor, only it
    old_id = next(
        link["other"]["reference"] for link in survivor["link"] if link["type"] == "replaces"
    )
    old = client.get(f"/{old_id}").json()
    assert old["active"] is False
    assert [link["type"] for link in old["link"]] == ["replaced-by"]
    assert old["link"][0]["other"]["reference"] == f"Patient/{survivor['id']}"
    # the old patient's visit now belongs to the survivor
    assert _encounter(client, "VOLD")["subject"]["reference"] == f"Patient/{survivor['id']}"
    assert client.get("/Encounter", params={"subject": old_id}).json().get("entry", []) == []

    # a later update of the survivor keeps the old identifier; a replay of the merge breaks nothing
    intake.receive_hl7(adt("A08", "M-4", mrn="NEW", family="SMITH-JONES", when="20240103000000"))
    intake.replay(intake.receive_hl7(merge).message_id)
    [survivor] = _patient(client, "OLD")
    assert survivor.get("active") is not False and survivor["name"][0]["family"] == "SMITH-JONES"
    assert {i["value"] for i in survivor["identifier"]} >= {"NEW", "OLD"}


def test_raw_hl7_over_http_answers_with_the_ack_and_a_matching_status(client) -> None:  # type: ignore[no-untyped-def]
    headers = {"content-type": "x-application/hl7-v2+er7"}
    ok = client.post("/hl7v2", content=adt("A01", "H-1"), headers=headers)
    assert ok.status_code == 200 and ack_fields(ok.text)["code"] == "AA"
    assert ok.headers["content-type"].startswith("x-application/hl7-v2+er7")
    again = client.post("/hl7v2", content=adt("A01", "H-1"), headers={"content-type": "text/plain"})
    assert (again.status_code, again.text) == (200, ok.text)
    rejected = client.post("/hl7v2", content=b"hello", headers=headers)
    assert rejected.status_code == 400 and ack_fields(rejected.text)["code"] == "AR"
    unusable = client.post(
        "/hl7v2",
        content=adt("A01", "H-2").replace(b"|20240101120000+0000||ADT", b"|||ADT"),
        headers=headers,
    )
    assert unusable.status_code == 422 and ack_fields(unusable.text)["code"] == "AE"
    assert (
        client.post(
            "/hl7v2", content=adt("A01", "H-3"), headers={"content-type": "image/png"}
        ).status_code
        == 415
    )


def test_inbox_listing_refuses_an_unknown_status(client) -> None:  # type: ignore[no-untyped-def]
    assert client.get("/inbox", params={"status": "lost"}).status_code == 400


def _sud_discharge(sender: str, control_id: str, mrn: str) -> bytes:
    app, facility = sender.split("|")
    return "\r".join(
        [
            f"MSH|^~\\&|{app}|{facility}|GW|GW|20240101120000+0000||ADT^A03^ADT_A03|{control_id}|P|2.5",
            "EVN|A03|20240101120000+0000",
            f"PID|1||{mrn}^^^HOSP^MR||DOE^JOHN||19800101|M",
            f"PV1|1|I|WARD^1^1||||||||||||||||V-{mrn}^^^HOSP^VN",
            "DG1|1||F10.20^Alcohol dependence^I10|||F|||||||||1",
        ]
    ).encode()


def test_whether_substance_use_data_are_part2_records_is_decided_per_sender(database, settings):  # type: ignore[no-untyped-def]
    from fhir_gateway.app import install_rules
    from fhir_gateway.services.ingest import Intake

    configured = settings.model_copy(update={"part2_senders": ["SAMHSA|CLINIC"]})
    install_rules(configured, database)
    try:
        intake = Intake(database, configured)
        assert (
            intake.receive_hl7(_sud_discharge("SAMHSA|CLINIC", "P2-1", "M-P2"), channel="test").code
            == "AA"
        )
        assert (
            intake.receive_hl7(_sud_discharge("GENERAL|HOSP", "P2-2", "M-GEN"), channel="test").code
            == "AA"
        )

        def labels(mrn: str) -> set[str]:
            with database.session() as session:
                [patient] = lookup.search(session, "Patient", [("identifier", mrn)])
                [condition] = lookup.search(
                    session, "Condition", [("subject", f"Patient/{patient['id']}")]
                )
            return {s["code"] for s in condition.get("meta", {}).get("security", [])}

        assert {"R", "ETH", "42CFRPart2"} <= labels("M-P2")
        general = labels("M-GEN")
        assert "42CFRPart2" not in general and "ETH" in general
    finally:
        install_rules(settings, database)


def _applied_while_another_plans(intake, client) -> bool:  # type: ignore[no-untyped-def]
    """Whether a discharge is applied while another one from the same hospital is inside its
    discharge rules (held there until the first is answered)."""
    assert intake.receive_hl7(adt("A03", "HOT-0", mrn="H0", visit="HV0")).code == "AA"
    planning, release = threading.Event(), threading.Event()
    first: list[object] = []

    def slow_plan(session, context) -> None:  # type: ignore[no-untyped-def]
        if context.encounter and not planning.is_set():
            planning.set()
            release.wait(30)

    unregister = client.app.state.rules.on_discharge(slow_plan)
    try:
        thread = threading.Thread(
            target=lambda: first.append(
                intake.receive_hl7(
                    adt("A03", "HOT-1", mrn="H1", visit="HV1", when="20240102120000")
                )
            )
        )
        thread.start()
        assert planning.wait(30)  # the first is inside its discharge rules
        done = threading.Event()
        second: list[object] = []

        def receive_second() -> None:
            second.append(
                intake.receive_hl7(
                    adt("A03", "HOT-2", mrn="H2", visit="HV2", when="20240103120000")
                )
            )
            done.set()

        threading.Thread(target=receive_second, daemon=True).start()
        applied_meanwhile = done.wait(20)
        release.set()
        thread.join(30)
        done.wait(30)
    finally:
        release.set()
        unregister()
    assert [a.code for a in first + second] == ["AA", "AA"]  # type: ignore[attr-defined]
    return applied_meanwhile


def _subscribe_to_discharges(client) -> None:  # type: ignore[no-untyped-def]
    subscription = {
        "resourceType": "Subscription",
        "id": "ehr-discharges",
        "status": "requested",
        "reason": "discharges",
        "criteria": "Encounter?status=finished",
        "channel": {"type": "rest-hook", "endpoint": "https://ehr.example.org/hook"},
    }
    answer = client.put("/Subscription/ehr-discharges", json=subscription)
    assert answer.status_code in (200, 201), answer.text


def _event_numbers(database) -> list[int]:  # type: ignore[no-untyped-def]
    from sqlalchemy import select

    from fhir_gateway.store.outbox_tables import outbox

    query = select(outbox.c.event_number).where(outbox.c.subscription == "ehr-discharges")
    return sorted(database.read(lambda s: list(s.execute(query).scalars())))


def test_a_hospitals_discharges_do_not_wait_for_each_others_care_plans(
    intake, client, database
) -> None:  # type: ignore[no-untyped-def]
    # Every message from a hospital names the same sending facility, whose source time each
    # one records (a row lock until the commit). Recorded last, after the care plan: a second
    # discharge is applied while the first is still making its plan, rather than waiting for it.
    if not database.is_postgres:
        pytest.skip("concurrent writers are PostgreSQL's; SQLite has one writer")
    assert _applied_while_another_plans(intake, client)


def test_with_an_ehr_subscribed_discharges_still_do_not_wait_for_each_other(
    intake, client, database
) -> None:  # type: ignore[no-untyped-def]
    # Each discharge notifies the EHR, whose event counter is one row: numbered when the
    # transaction commits, not when the Encounter is written, it is locked only for the commit.
    if not database.is_postgres:
        pytest.skip("concurrent writers are PostgreSQL's; SQLite has one writer")
    _subscribe_to_discharges(client)
    assert _applied_while_another_plans(intake, client)
    assert _event_numbers(database) == [1, 2, 3]


def test_a_message_that_fails_notifies_nobody(intake, client, database) -> None:  # type: ignore[no-untyped-def]
    _subscribe_to_discharges(client)
    unregister = client.app.state.rules.on_discharge(_broken_care_plan_engine)
    try:
        answer = intake.receive_hl7(adt("A03", "NOTE-1"))
    finally:
        unregister()
    assert ack_fields(answer.body)["code"] == "AE"
    assert _event_numbers(database) == []  # its Encounter was rolled back with its notification
    assert intake.receive_hl7(adt("A03", "NOTE-2", mrn="MRN2", visit="V2")).code == "AA"
    assert _event_numbers(database) == [1]
