"""Responses in, scores out, through the REST API and a transaction: the shipped instruments are
stored at start, a QuestionnaireResponse is refused (422, naming the item) when it does not fit
its Questionnaire, and scored into Observations in the same transaction when it does."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import orjson
import pytest
from seeds import seed_once

from fhir_gateway import assessments, monitors

FHIR = {"Content-Type": "application/fhir+json"}
DATA = Path(__file__).parents[1] / "data" / "fhir"
Y, N = assessments.YES, assessments.NO
FLAGS = "http://fhir-gateway.org/fhir/CodeSystem/monitor-flags"


@pytest.fixture
def api(client, database, settings):  # type: ignore[no-untyped-def]
    seed_once(database, "assessments", lambda: database.write(assessments.seed, settings))
    patient = client.post(
        "/Patient", json={"resourceType": "Patient", "name": [{"family": "Rivera"}]}, headers=FHIR
    ).json()
    client.patient = f"Patient/{patient['id']}"  # type: ignore[attr-defined]
    return client


def us_core_phq9(patient: str) -> dict[str, Any]:
    doc = orjson.loads((DATA / "QuestionnaireResponse-us-core-phq-9-example.json").read_bytes())
    doc.pop("id")
    doc["questionnaire"] = assessments.PHQ9_URL
    doc["subject"] = {"reference": patient}
    doc.pop("author")
    return doc


def answer(link: str, code: str) -> dict[str, Any]:
    return {
        "linkId": link,
        "answer": [{"valueCoding": {"system": assessments.LOINC, "code": code}}],
    }


def derived(client, response_id: str) -> dict[str, dict[str, Any]]:  # type: ignore[no-untyped-def]
    bundle = client.get(
        "/Observation", params={"derived-from": f"QuestionnaireResponse/{response_id}"}
    ).json()
    return {
        e["resource"]["code"]["coding"][0]["code"]: e["resource"] for e in bundle.get("entry", [])
    }


def incomplete_flags(client, response_id: str) -> list[dict[str, Any]]:  # type: ignore[no-untyped-def]
    bundle = client.get("/Flag", params={"_tag": f"{FLAGS}|assessment-incomplete"}).json()
    flags = [e["resource"] for e in bundle.get("entry", [])]
    return [
        f
        for f in flags
        if any(
            (x.get("valueReference") or {}).get("reference")
            == f"QuestionnaireResponse/{response_id}"
            for x in f.get("extension", [])
        )
    ]


def test_the_us_core_phq9_example_posted_gives_its_total_of_12_and_item_9(api) -> None:  # type: ignore[no-untyped-def]
    posted = api.post("/QuestionnaireResponse", json=us_core_phq9(api.patient), headers=FHIR)
    assert posted.status_code == 201, posted.text
    found = derived(api, posted.json()["id"])
    total, item9 = found[assessments.PHQ9_TOTAL], found[assessments.PHQ9_ITEM9]
    assert total["valueInteger"] == 12
    assert total["effectiveDateTime"] == "2022-11-29T20:50:32.718Z"
    assert total["subject"] == {"reference": api.patient}
    assert total["category"][0]["coding"][0]["code"] == "survey"
    assert item9["valueCodeableConcept"]["coding"][0]["code"] == "LA6568-5"
    assert incomplete_flags(api, posted.json()["id"]) == []


def test_answers_sent_as_bare_codes_are_scored_like_the_published_ones(api) -> None:  # type: ignore[no-untyped-def]
    """A form that sends only system and code (no display) is as valid as the example."""
    doc = us_core_phq9(api.patient)
    for item in doc["item"]:
        for given in item.get("answer", []):
            given.get("valueCoding", {}).pop("display", None)
    posted = api.post("/QuestionnaireResponse", json=doc, headers=FHIR)
    assert posted.status_code == 201, posted.text
    found = derived(api, posted.json()["id"])
    assert found[assessments.PHQ9_TOTAL]["valueInteger"] == 12
    item9 = found[assessments.PHQ9_ITEM9]["valueCodeableConcept"]
    assert item9["coding"][0]["code"] == "LA6568-5" and item9.get("text") != ""


def test_an_updated_response_updates_its_observations_and_a_gap_raises_the_work_item(
    api, database
) -> None:  # type: ignore[no-untyped-def]
    doc = us_core_phq9(api.patient)
    created = api.post("/QuestionnaireResponse", json=doc, headers=FHIR).json()
    first = derived(api, created["id"])
    changed = copy.deepcopy(created)
    changed["item"] = [i for i in changed["item"] if i["linkId"] != "/44260-8"]
    updated = api.put(f"/QuestionnaireResponse/{created['id']}", json=changed, headers=FHIR)
    assert updated.status_code == 200, updated.text
    second = derived(api, created["id"])
    assert {o["id"] for o in second.values()} == {o["id"] for o in first.values()}
    total, item9 = second[assessments.PHQ9_TOTAL], second[assessments.PHQ9_ITEM9]
    assert "valueInteger" not in total and "44260-8" in total["dataAbsentReason"]["text"]
    assert total["status"] == "amended"
    assert "valueCodeableConcept" not in item9 and "dataAbsentReason" in item9
    (flag,) = incomplete_flags(api, created["id"])
    assert flag["status"] == "active"
    assert "suicide question" in flag["code"]["text"]
    priority = flag["extension"][0]["valueCodeableConcept"]["coding"][0]["code"]
    assert priority == "PH"
    assert flag["id"] in {f["id"] for f in database.read(monitors.alerts)}  # on the worklist
    api.put(
        f"/QuestionnaireResponse/{created['id']}",
        json={**created, "id": created["id"]},
        headers=FHIR,
    )
    (flag,) = incomplete_flags(api, created["id"])
    assert flag["status"] == "inactive"
    assert derived(api, created["id"])[assessments.PHQ9_TOTAL]["valueInteger"] == 12


def test_a_response_that_does_not_fit_is_refused_with_422_naming_the_item(api) -> None:  # type: ignore[no-untyped-def]
    cases = {
        "/99999-9": [answer("/99999-9", "LA6568-5")],
        "LA33-6": [answer("/44250-9", "LA33-6")],
        "one answer": [
            {
                "linkId": "/44250-9",
                "answer": [
                    {"valueCoding": {"system": assessments.LOINC, "code": "LA6568-5"}},
                    {"valueCoding": {"system": assessments.LOINC, "code": "LA6569-3"}},
                ],
            }
        ],
        "valueBoolean does not fit": [{"linkId": "/44250-9", "answer": [{"valueBoolean": True}]}],
    }
    for words, items in cases.items():
        doc = {**us_core_phq9(api.patient), "item": items}
        refused = api.post("/QuestionnaireResponse", json=doc, headers=FHIR)
        assert refused.status_code == 422, (words, refused.text)
        issue = refused.json()["issue"][0]
        assert words in issue["diagnostics"]
        assert "QuestionnaireResponse.item" in issue["expression"][0]
    unknown = {**us_core_phq9(api.patient), "questionnaire": "http://example.org/Questionnaire/x"}
    refused = api.post("/QuestionnaireResponse", json=unknown, headers=FHIR)
    assert refused.status_code == 422
    assert api.get("/Observation").json().get("total", 0) == 0


def test_a_positive_cssrs_in_a_transaction_gives_its_risk_level_high(api) -> None:  # type: ignore[no-untyped-def]
    response = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": assessments.CSSRS_URL,
        "status": "completed",
        "subject": {"reference": api.patient},
        "authored": "2026-03-02T10:00:00Z",
        "item": [
            answer("/93246-7", Y),
            answer("/93247-5", Y),
            answer("/93248-3", Y),
            answer("/93249-1", Y),
            answer("/93250-9", N),
            answer("/93267-3", N),
        ],
    }
    bundle = {
        "resourceType": "Bundle",
        "type": "transaction",
        "entry": [
            {"resource": response, "request": {"method": "POST", "url": "QuestionnaireResponse"}}
        ],
    }
    answered = api.post("/", json=bundle, headers=FHIR)
    assert answered.status_code == 200, answered.text
    location = answered.json()["entry"][0]["response"]["location"]
    response_id = location.split("/")[1]
    risk = derived(api, response_id)[assessments.CSSRS_RISK]
    assert risk["valueCodeableConcept"]["coding"][0]["code"] == assessments.RISK_HIGH
    assert risk["derivedFrom"] == [{"reference": f"QuestionnaireResponse/{response_id}"}]


def test_a_questionnaire_edited_through_the_api_changes_the_scoring(api) -> None:  # type: ignore[no-untyped-def]
    phq2 = api.get("/Questionnaire/phq-2").json()
    for item in phq2["item"][:2]:
        for option in item["answerOption"]:
            option["extension"][0]["valueDecimal"] *= 10
    assert api.put("/Questionnaire/phq-2", json=phq2, headers=FHIR).status_code == 200
    doc = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": assessments.PHQ2_URL,
        "status": "completed",
        "subject": {"reference": api.patient},
        "item": [answer("/44250-9", "LA6569-3"), answer("/44255-8", "LA6571-9")],
    }
    created = api.post("/QuestionnaireResponse", json=doc, headers=FHIR).json()
    assert derived(api, created["id"])[assessments.PHQ2_TOTAL]["valueInteger"] == 40
    broken = copy.deepcopy(phq2)
    broken["item"][2]["extension"][0]["valueExpression"]["expression"] = "%resource.item.("
    refused = api.put("/Questionnaire/phq-2", json=broken, headers=FHIR)
    assert refused.status_code == 422


def test_scores_are_written_with_the_callers_rights_and_inherit_the_responses_labels(
    api, database
) -> None:  # type: ignore[no-untyped-def]
    from fhir_gateway.errors import Forbidden
    from fhir_gateway.security import TokenCaller
    from fhir_gateway.services import resources as svc

    doc = us_core_phq9(api.patient)
    doc["meta"] = {
        "security": [{"system": "http://terminology.hl7.org/CodeSystem/v3-ActCode", "code": "PSY"}]
    }
    narrow = TokenCaller(
        client_id="forms",
        role="case-manager",
        scopes=frozenset({"system/QuestionnaireResponse.cru"}),
    )
    with pytest.raises(Forbidden, match="Observation"):
        database.write(svc.create, "QuestionnaireResponse", doc, narrow)
    assert api.get("/QuestionnaireResponse").json().get("total", 0) == 0  # nothing half-stored
    wide = TokenCaller(
        client_id="forms",
        role="case-manager",
        scopes=frozenset({"system/QuestionnaireResponse.cru", "system/Observation.cru"}),
    )
    stored = database.write(svc.create, "QuestionnaireResponse", doc, wide).stored
    total = derived(api, stored.res_id)[assessments.PHQ9_TOTAL]
    assert total["meta"]["security"][0]["code"] == "PSY"
    assert api.delete(f"/QuestionnaireResponse/{stored.res_id}").status_code in (200, 204)
    withdrawn = derived(api, stored.res_id)
    assert {o["status"] for o in withdrawn.values()} == {"entered-in-error"}


def test_seeding_again_keeps_an_edit_made_through_the_api(api, database, settings) -> None:  # type: ignore[no-untyped-def]
    assert database.write(assessments.seed, settings) == 0  # stable ids: nothing new
    gad7 = api.get("/Questionnaire/gad-7").json()
    gad7["title"] = "GAD-7 (our wording)"
    assert api.put("/Questionnaire/gad-7", json=gad7, headers=FHIR).status_code == 200
    assert database.write(assessments.seed, settings) == 0
    assert api.get("/Questionnaire/gad-7").json()["title"] == "GAD-7 (our wording)"
    listed = api.get("/Questionnaire", params={"_count": "50"}).json()
    assert {e["resource"]["id"] for e in listed["entry"]} >= {
        "phq-9",
        "gad-7",
        "phq-2",
        "c-ssrs-screener",
        "ahc-hrsn-core",
    }
