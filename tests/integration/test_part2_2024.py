"""The 42 CFR Part 2 final rule of 2024 and DS4P, seen from outside with authentication on:

* a TPO consent to the class "my treating providers" releases a Part 2 referral to each treating
  partner holding one, and to no one else (a peer partner must be named; a treating partner
  without a relationship to the patient sees nothing);
* every copy of Part 2 data a recipient gets (read, search, ``_include``, notification payload,
  partner push) carries the 2.32 notice, the consent (readable by that recipient) with its scope
  in words, the purposes and the obligation labels;
* SUD counselling notes are withheld under a TPO consent and released only under a consent that
  names them;
* a revocation in writing stops a notification already queued, and puts the referral back to
  waiting;
* the accounting of disclosures lists exactly the disclosures made.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import httpx
import orjson
import pytest
from careplan_helpers import ZONE, adt
from fastapi.testclient import TestClient
from security_data import PARTNER_SCOPES
from security_helpers import bearer, get_token, register, secure_client
from seeds import seed_templates

from fhir_gateway import privacy
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.notifications._visibility import caller_to_json
from fhir_gateway.privacy import consent_forms as forms
from fhir_gateway.services import lookup
from fhir_gateway.services import resources as svc
from fhir_gateway.settings import Settings
from fhir_gateway.store import outbox
from fhir_gateway.store.db import Database
from fhir_gateway.workers.delivery import DeliveryWorker
from fhir_gateway.workflow import PUSH_CHANNEL, push_payload

PRAIRIE = "Organization/prairie-recovery"  # treating provider, covered entity (shipped directory)
PEERS = "Organization/recovery-peers"  # a peer-recovery partner added here, closer to the patient
LINCOLN = "Organization/lincoln-therapy"  # treating provider, no referral of this patient
HOPE = "Organization/hope-housing"  # housing partner, not a treating provider
EHR = "Organization/ehr-clinic"
ADDICTION, PEER_RECOVERY = "Addiction treatment programme", "Peer recovery support"
ALCOHOL = (
    ("F32.2", "Major depressive disorder, severe"),
    ("F10.20", "Alcohol dependence uncomplicated"),
)
SERVICE = "http://fhir-gateway.org/fhir/CodeSystem/referral-service"
NOTE_TYPE = {"system": "http://loinc.org", "code": "11488-4", "display": "Consult note"}
HOOK = "https://prairie.example.org/hooks/referrals"
PRAIRIE_FHIR = "https://fhir.prairie.example.org/r4"
SCOPES = [*PARTNER_SCOPES, "system/Consent.rs"]
_ORG_TYPE = "http://terminology.hl7.org/CodeSystem/organization-type"
SIGNED = {"contentType": "application/pdf", "data": "JVBERi0xLjQ=", "title": "Signed consent"}


@dataclass
class World:
    client: TestClient
    database: Database
    settings: Settings
    manager: dict[str, str]
    tokens: dict[str, dict[str, str]] = field(default_factory=dict)

    def send(self, raw: bytes) -> None:
        answer = self.client.app.state.intake.receive_hl7(raw, channel="http")  # type: ignore[attr-defined]
        assert answer.code == "AA", answer.body

    def all(self, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
        return self.database.read(lambda s: lookup.search(s, res_type, list(params)))

    def patient(self) -> str:
        [found] = self.all("Patient", ("identifier", "MRN100"))
        return f"Patient/{found['id']}"

    def referral(self, title: str) -> tuple[dict[str, Any], dict[str, Any]]:
        request = next(
            r for r in self.all("ServiceRequest") if (r.get("code") or {}).get("text") == title
        )
        [task] = self.all("Task", ("focus", f"ServiceRequest/{request['id']}"))
        return task, request

    def as_(self, organization: str) -> dict[str, str]:
        return self.tokens[organization]

    def consent(self, doc: dict[str, Any]) -> dict[str, Any]:
        answer = self.client.post("/Consent", json=doc, headers=self.manager)
        assert answer.status_code == 201, answer.text
        return dict(answer.json())

    def revoke(self, consent: dict[str, Any]) -> None:
        revoked = forms.revocation(
            {k: v for k, v in consent.items() if k != "meta"},
            revoked_on=datetime.now(UTC),
            document={"contentType": "application/pdf", "data": "UkVWT0tFRA=="},
        )
        answer = self.client.put(f"/Consent/{consent['id']}", json=revoked, headers=self.manager)
        assert answer.status_code == 200, answer.text


def _write(database: Database, *docs: dict[str, Any]) -> None:
    def run(session: Any) -> None:
        for doc in docs:
            svc.update(session, doc["resourceType"], doc["id"], doc, SYSTEM)

    database.write(run)


def _peers(treating: bool) -> list[dict[str, Any]]:
    kind = ("treating-provider", privacy.PART2_RECIPIENT) if treating else ("other", _ORG_TYPE)
    return [
        {
            "resourceType": "Organization",
            "id": "recovery-peers",
            "active": True,
            "name": "Springfield Recovery Peers",
            "type": [{"coding": [{"system": kind[1], "code": kind[0]}]}],
        },
        {
            "resourceType": "HealthcareService",
            "id": "recovery-peers-springfield",
            "active": True,
            "providedBy": {"reference": PEERS},
            "type": [{"coding": [{"system": SERVICE, "code": "peer-recovery-support"}]}],
            "coverageArea": [{"reference": "Location/area-springfield-il"}],
        },
        {  # Prairie runs its own FHIR server: referrals are pushed there
            "resourceType": "Endpoint",
            "id": "prairie-fhir",
            "status": "active",
            "connectionType": {
                "system": "http://terminology.hl7.org/CodeSystem/endpoint-connection-type",
                "code": "hl7-fhir-rest",
            },
            "managingOrganization": {"reference": PRAIRIE},
            "payloadType": [{"text": "any"}],
            "address": PRAIRIE_FHIR,
        },
    ]


@pytest.fixture
def world(database: Database, database_url: str, request: Any) -> Iterator[World]:
    treating_peers = getattr(request, "param", False)
    with secure_client(
        database, database_url, careplan_mode="auto", sender_zones={"STMARYS": ZONE}
    ) as client:
        settings: Settings = client.app.state.settings  # type: ignore[attr-defined]
        seed_templates(database, settings)
        _write(database, *_peers(treating_peers))
        manager = bearer(
            get_token(
                client,
                register(
                    database, "case-manager", ["system/*.cruds"], "Organization/care-coordination"
                ),
            )
        )
        world = World(client, database, settings, manager)
        for org in (PRAIRIE, PEERS, LINCOLN, HOPE):
            world.tokens[org] = bearer(
                get_token(client, register(database, "partner", SCOPES, org))
            )
        world.tokens[EHR] = bearer(
            get_token(client, register(database, "ehr", ["system/*.rs"], EHR))
        )
        world.tokens["admin"] = bearer(
            get_token(client, register(database, "admin", ["system/*.cruds"], None))
        )
        yield world


def _tpo(patient: str, recipients: list[str] | None = None, **kw: Any) -> dict[str, Any]:
    return forms.part2_consent(
        patient=patient,
        discloser="Organization/care-coordination",
        recipients=recipients,
        purposes=forms.TPO,
        data_scope="my substance-use diagnosis, care plan and referrals",
        expires=None,
        signed_on=date(2025, 3, 1),
        signed_by=patient,
        document=SIGNED,
        **kw,
    )


def _codes(resource: dict[str, Any]) -> set[str]:
    return {lb.get("code") for lb in (resource.get("meta") or {}).get("security", [])}


def _status(world: World, who: str, path: str) -> int:
    return world.client.get(path, headers=world.as_(who)).status_code


# -- a TPO consent to the class of treating providers ------------------------------------------


@pytest.mark.parametrize(
    "world",
    [True, False],
    ids=["peer partner treats", "peer partner does not treat"],
    indirect=True,
)
def test_a_tpo_consent_to_treating_providers_releases_each_treating_partners_referral_only(
    world: World, request: Any
) -> None:
    peers_treat = request.node.callspec.params["world"]
    world.send(adt(diagnoses=ALCOHOL))
    patient = world.patient()
    addiction, _ = world.referral(ADDICTION)
    peer, _ = world.referral(PEER_RECOVERY)
    assert addiction["owner"]["reference"] == PRAIRIE and peer["owner"]["reference"] == PEERS
    assert {addiction["status"], peer["status"]} == {"draft"}  # both wait for consent
    [plan] = world.all("CarePlan")  # psychiatric and substance-use care in one plan: which is which
    inline = {
        a["reference"]["reference"]: {
            e["valueCoding"]["code"]
            for e in a.get("extension", [])
            if e["url"] == privacy.INLINE_LABEL
        }
        for a in plan["activity"]
    }
    part2 = {f"ServiceRequest/{world.referral(t)[1]['id']}" for t in (ADDICTION, PEER_RECOVERY)}
    assert {ref for ref, codes in inline.items() if codes} == part2 and len(inline) > len(part2)
    assert all(inline[ref] == {"R", "ETH", "42CFRPart2"} for ref in part2)
    consent = world.consent(_tpo(patient))

    addiction, _ = world.referral(ADDICTION)
    peer, _ = world.referral(PEER_RECOVERY)
    assert addiction["status"] == "requested" and "businessStatus" not in addiction
    assert (peer["status"] == "requested") is peers_treat  # only a treating partner is reached
    assert _status(world, PRAIRIE, f"/Task/{addiction['id']}") == 200
    assert _status(world, PEERS, f"/Task/{peer['id']}") == (200 if peers_treat else 404)
    assert _status(world, PRAIRIE, f"/Consent/{consent['id']}") == 200  # the recipient reads it
    assert _status(world, PEERS, f"/Consent/{consent['id']}") == (200 if peers_treat else 404)

    # no one else: a treating partner with no referral of this patient, a housing partner, an EHR
    for outsider in (LINCOLN, HOPE, EHR):
        assert _status(world, outsider, f"/Task/{addiction['id']}") == 404, outsider
        assert _status(world, outsider, f"/Consent/{consent['id']}") == 404, outsider
        found = world.client.get(f"/Task?patient={patient}", headers=world.as_(outsider))
        assert "42CFRPart2" not in found.text, outsider

    if not peers_treat:  # a partner that does not treat is reached when the patient names it
        world.consent(_tpo(patient, [PEERS]))
        peer, _ = world.referral(PEER_RECOVERY)
        assert peer["status"] == "requested" and _status(world, PEERS, f"/Task/{peer['id']}") == 200


# -- the notice on every disclosure path --------------------------------------------------------


def _subscribe_prairie(world: World) -> None:
    """A rest-hook Subscription kept for Prairie (its notifications show what Prairie may see)."""
    subscription = {
        "resourceType": "Subscription",
        "id": "prairie-referrals",
        "status": "requested",
        "reason": "Prairie's referrals",
        "criteria": f"Task?owner={PRAIRIE}",
        "channel": {"type": "rest-hook", "endpoint": HOOK, "payload": "application/fhir+json"},
    }
    viewer = Caller("prairie-subscriber", "partner", PRAIRIE, frozenset({"system/*.rs"}))

    def run(session: Any) -> None:
        svc.update(session, "Subscription", subscription["id"], subscription, SYSTEM)
        outbox.set_viewer(session, subscription["id"], caller_to_json(viewer))

    world.database.write(run)


def _assert_disclosed(
    copy: dict[str, Any], consent: dict[str, Any], *, hipaa: bool, where: str
) -> None:
    codes = _codes(copy)
    assert {"R", "ETH", "42CFRPart2"} <= codes, where
    assert {"TREAT", "HPAYMT", "HOPERAT", "CPLYCD"} <= codes, where  # purposes, obligation
    assert ("NORDSCLCD" in codes) is not hipaa, where  # refrain, but for a covered entity
    marks = [e for e in copy["meta"].get("extension", []) if e["url"] == privacy.DISPLAY]
    assert [m["valueAnnotation"]["text"] for m in marks] == [privacy.NOTICE_2_32], where
    [label] = [lb for lb in copy["meta"]["security"] if lb["code"] == "42CFRPart2"]
    [artifact] = [
        e["valueRelatedArtifact"]
        for e in label["extension"]
        if e["url"] == privacy.RELATED_ARTIFACT
    ]
    assert artifact["url"].endswith(f"Consent/{consent['id']}"), where
    assert artifact["display"] == forms.describe(consent), where  # its scope in words


def _body(world: World, row: outbox.OutboxRow) -> bytes:
    """What the row sends: a partner push is built by the worker as it goes (the same builder)."""
    if row.channel != PUSH_CHANNEL or row.body:
        return row.body
    built = world.database.read(push_payload, row.focus, world.settings.base_url or "")
    assert isinstance(built, tuple), built
    return built[0]


def _outbox_resources(world: World, url: str) -> list[dict[str, Any]]:
    """What the outbox sends to ``url`` (notifications go to endpoint/Type/id)."""
    rows = [r for r in world.database.read(outbox.list_rows, limit=1000) if r.url.startswith(url)]
    out: list[dict[str, Any]] = []
    for row in rows:
        doc = orjson.loads(_body(world, row))
        out += [e["resource"] for e in doc.get("entry", []) if "resource" in e] or [doc]
    return out


def test_every_disclosure_path_carries_the_notice_the_consent_and_the_obligations(
    world: World,
) -> None:
    _subscribe_prairie(world)
    world.send(adt(diagnoses=ALCOHOL))
    patient = world.patient()
    consent = world.consent(_tpo(patient))
    task, request = world.referral(ADDICTION)
    prairie = world.as_(PRAIRIE)

    read = world.client.get(f"/Task/{task['id']}", headers=prairie).json()
    _assert_disclosed(read, consent, hipaa=True, where="read")
    found = world.client.get(f"/ServiceRequest?patient={patient}", headers=prairie).json()
    [searched] = [e["resource"] for e in found["entry"]]
    _assert_disclosed(searched, consent, hipaa=True, where="search")
    included = world.client.get(
        f"/Task?_id={task['id']}&_include=Task:focus", headers=prairie
    ).json()
    [via_include] = [e["resource"] for e in included["entry"] if e["search"]["mode"] == "include"]
    assert via_include["id"] == request["id"]
    _assert_disclosed(via_include, consent, hipaa=True, where="_include")
    notified = _outbox_resources(world, HOOK)
    assert notified, "the release was notified"
    for copy in notified:
        _assert_disclosed(copy, consent, hipaa=True, where="notification payload")
    pushed = _outbox_resources(world, PRAIRIE_FHIR)
    assert {r["resourceType"] for r in pushed} == {"Task", "ServiceRequest"}
    for copy in pushed:
        _assert_disclosed(copy, consent, hipaa=True, where="partner push")
    accepted = read | {"status": "accepted"}  # the copy it was given, sent back
    answer = world.client.put(f"/Task/{task['id']}", json=accepted, headers=prairie)
    assert answer.status_code == 200, answer.text
    _assert_disclosed(answer.json(), consent, hipaa=True, where="the answer to a write")
    [stored] = world.all("Task", ("_id", task["id"]))
    assert _codes(stored) == _codes(task) and "extension" not in stored["meta"]  # marks travel
    shown_consent = world.client.get(f"/Consent/{consent['id']}", headers=prairie).json()
    assert shown_consent["provision"] == consent["provision"]  # the consent itself, readable


def test_a_recipient_that_is_no_covered_entity_is_told_not_to_redisclose(world: World) -> None:
    world.send(adt(diagnoses=ALCOHOL))
    consent = world.consent(_tpo(world.patient(), [PEERS]))
    task, _ = world.referral(PEER_RECOVERY)
    copy = world.client.get(f"/Task/{task['id']}", headers=world.as_(PEERS)).json()
    _assert_disclosed(copy, consent, hipaa=False, where="peer partner")


# -- counselling notes ---------------------------------------------------------------------------


def test_counselling_notes_are_withheld_under_a_tpo_consent(world: World) -> None:
    world.settings.counselling_note_types["*"] = [f"{NOTE_TYPE['system']}|{NOTE_TYPE['code']}"]
    world.send(adt(diagnoses=ALCOHOL))
    patient = world.patient()
    for doc_id, concept in (
        ("session-note", NOTE_TYPE),
        ("discharge-summary", {"text": "Summary"}),
    ):
        note = {
            "resourceType": "DocumentReference",
            "id": doc_id,
            "status": "current",
            "type": {"coding": [concept]} if "code" in concept else concept,
            "subject": {"reference": patient},
            "content": [{"attachment": {"contentType": "text/plain", "data": "U2Vzc2lvbg=="}}],
        }
        if doc_id == "discharge-summary":  # Part 2 data that is not a counselling note
            note["meta"] = {"security": [dict(privacy.ETH), {**privacy.PART2}]}
        answer = world.client.put(f"/DocumentReference/{doc_id}", json=note, headers=world.manager)
        assert answer.status_code == 201, answer.text
    assert "PSYTHPN" in _codes(world.all("DocumentReference", ("_id", "session-note"))[0])
    ehr = world.as_(EHR)

    def documents() -> set[str]:
        answer = world.client.get(f"/DocumentReference?patient={patient}", headers=ehr)
        return {e["resource"]["id"] for e in answer.json().get("entry", [])}

    world.consent(_tpo(patient, [EHR]))
    assert documents() == {"discharge-summary"}  # the notes stay behind
    assert _status(world, EHR, "/DocumentReference/session-note") == 404
    notes = world.consent(_tpo(patient, [EHR], counselling_notes=True))
    assert documents() == {"discharge-summary", "session-note"}
    copy = world.client.get("/DocumentReference/session-note", headers=ehr).json()
    [label] = [lb for lb in copy["meta"]["security"] if lb["code"] == "42CFRPart2"]
    [artifact] = [e for e in label["extension"] if e["url"] == privacy.RELATED_ARTIFACT]
    assert artifact["valueRelatedArtifact"]["url"] == f"Consent/{notes['id']}"


# -- revocation ---------------------------------------------------------------------------------


def _deliver(world: World) -> list[httpx.Request]:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200)

    worker = DeliveryWorker(world.database, world.settings, transport=httpx.MockTransport(handler))
    try:
        worker.drain()
    finally:
        worker.close()
    return sent


def test_revocation_stops_a_notification_already_queued(world: World) -> None:
    _subscribe_prairie(world)
    world.send(adt(diagnoses=ALCOHOL))
    patient = world.patient()
    consent = world.consent(_tpo(patient))
    task, _ = world.referral(ADDICTION)
    queued = [
        r
        for r in world.database.read(outbox.list_rows, limit=1000)
        # a push says what it discloses as it goes
        if r.disclosures or (r.focus or "").startswith(f"Task/{task['id']}/")
    ]
    assert {r.url.split("/Task")[0] for r in queued} == {HOOK, PRAIRIE_FHIR}  # for the worker

    world.revoke(consent)
    sent = _deliver(world)
    assert [r for r in sent if task["id"].encode() in r.content] == []  # nothing of it went
    after = {r.id: r for r in world.database.read(outbox.list_rows, limit=1000)}
    assert {after[r.id].status for r in queued} == {"withdrawn"}
    assert world.database.read(outbox.replay) == 0  # a withdrawn row is no dead letter
    task, _ = world.referral(ADDICTION)
    assert task["businessStatus"]["coding"][0]["code"] == "awaiting-consent"  # waiting again
    assert _status(world, PRAIRIE, f"/Task/{task['id']}") == 404
    assert _status(world, PRAIRIE, f"/Consent/{consent['id']}") == 404


# -- the accounting of disclosures --------------------------------------------------------------


def _accounted(world: World, patient: str) -> list[tuple[str, str, frozenset[str]]]:
    answer = world.client.get(f"/{patient}/$disclosures", headers=world.tokens["admin"])
    assert answer.status_code == 200, answer.text
    out = []
    for entry in answer.json()["entry"]:
        event = entry["resource"]
        recipient = next(a["who"]["reference"] for a in event["agent"] if "reference" in a["who"])
        entities = [e["what"]["reference"] for e in event["entity"]]
        assert patient in entities
        consent = next(e for e in entities if e.startswith("Consent/"))
        data = frozenset(e.split("/_history")[0] for e in entities if e not in (patient, consent))
        out.append((recipient, consent, data))
    return out


def test_the_accounting_lists_exactly_the_disclosures_made(
    world: World, monkeypatch: Any, database_url: str
) -> None:
    _subscribe_prairie(world)
    world.send(adt(diagnoses=ALCOHOL))
    patient = world.patient()
    assert _accounted(world, patient) == []
    consent = world.consent(_tpo(patient))
    cid = f"Consent/{consent['id']}"
    task, request = world.referral(ADDICTION)
    task_ref, request_ref = f"Task/{task['id']}", f"ServiceRequest/{request['id']}"
    assert _accounted(world, patient) == []  # queued is not disclosed

    sent = [r for r in _deliver(world) if str(r.url).startswith((HOOK, PRAIRIE_FHIR))]
    assert len(sent) == 2  # the notification and the push go out
    world.client.get(f"/{task_ref}", headers=world.as_(PRAIRIE))  # a read
    world.client.get(f"/ServiceRequest?patient={patient}", headers=world.as_(PRAIRIE))  # a search
    assert _status(world, LINCOLN, f"/{task_ref}") == 404  # refused: nothing disclosed
    assert _status(world, "admin", f"/{task_ref}") == 200  # the care team's own: no disclosure

    assert sorted(_accounted(world, patient), key=str) == sorted(
        [
            (PRAIRIE, cid, frozenset({task_ref})),  # the rest-hook notification
            (PRAIRIE, cid, frozenset({task_ref, request_ref})),  # the push
            (PRAIRIE, cid, frozenset({task_ref})),  # the read
            (PRAIRIE, cid, frozenset({request_ref})),  # the search
        ],
        key=str,
    )
    since_now = world.client.get(
        f"/{patient}/$disclosures?since=2999-01-01", headers=world.tokens["admin"]
    )
    assert since_now.json().get("entry", []) == []
    assert (
        world.client.get(f"/{patient}/$disclosures", headers=world.as_(PRAIRIE)).status_code == 403
    )

    from typer.testing import CliRunner

    from fhir_gateway.cli import app as cli
    from fhir_gateway.settings import get_settings

    monkeypatch.setenv("FHIR_GATEWAY_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        printed = CliRunner().invoke(cli, ["report", "disclosures", patient])
    finally:
        get_settings.cache_clear()
    assert printed.exit_code == 0, printed.output
    assert f"4 disclosure(s) of {patient}" in printed.output
    assert printed.output.count(f"to {PRAIRIE}  under {cid}") == 4
