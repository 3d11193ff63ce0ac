"""A completed safety plan becomes the patient's safety-plan CarePlan, linked to the discharge plan,
in the patient's words; a second one is a new version of the same plan; the open review Task is
completed; a response that could not be printed whole is refused with the reason."""

from __future__ import annotations

from typing import Any

import pytest
from safety_plan_helpers import PATIENT, response, seed_patient

from fhir_gateway import assessments
from fhir_gateway.app import install_rules
from fhir_gateway.context import SYSTEM, Caller
from fhir_gateway.errors import BusinessRule, Forbidden
from fhir_gateway.security import TokenCaller
from fhir_gateway.services import resources
from fhir_gateway.settings import Settings

CASE_MANAGER = TokenCaller(
    client_id="user:cm", role="case-manager", scopes=frozenset({"system/*.cruds"})
)


@pytest.fixture
def db(database, database_url):  # type: ignore[no-untyped-def]
    install_rules(Settings(database_url=database_url, base_url=None, auth_enabled=False), database)
    seed_patient(database)
    return database


def _post(db: Any, doc: dict[str, Any], caller: Any = CASE_MANAGER) -> str:
    with db.session() as session:
        stored = resources.create(session, "QuestionnaireResponse", doc, caller).stored
        assert stored is not None
        return stored.res_id


def _read(db: Any, reference: str) -> Any:
    res_type, res_id = reference.split("/")
    with db.session(readonly=True) as session:
        return resources.read(session, res_type, res_id, CASE_MANAGER)


def test_a_completed_plan_is_a_careplan_of_its_own_linked_to_the_discharge_plan(db):
    response_id = _post(db, response())
    plan = _read(db, f"CarePlan/{assessments.plan_id(PATIENT)}").content
    codes = {c["code"] for c in plan["category"][0]["coding"]}
    assert "safety-plan" in codes
    assert plan["subject"] == {"reference": PATIENT}
    assert plan["basedOn"] == [{"reference": "CarePlan/sp-discharge"}]
    assert plan["partOf"] == [{"reference": "CarePlan/sp-discharge"}]
    assert plan["supportingInfo"] == [{"reference": f"QuestionnaireResponse/{response_id}"}]
    text = plan["text"]["div"]
    for words in ("I stop answering my phone", "Walk the dog along the lake", "217-555-0190"):
        assert words in text
    assert "PSY" in {label["code"] for label in plan["meta"]["security"]}
    stored = _read(db, f"QuestionnaireResponse/{response_id}").content  # the words are PSY too
    assert "PSY" in {label["code"] for label in stored["meta"]["security"]}


def test_a_new_response_is_a_new_version_of_the_same_plan(db):
    _post(db, response())
    second = _post(db, response(warning="I give my things away", authored="2026-12-03T09:00:00Z"))
    plan = _read(db, f"CarePlan/{assessments.plan_id(PATIENT)}")
    assert plan.version_id == 2
    assert "I give my things away" in plan.content["text"]["div"]
    assert "I stop answering my phone" not in plan.content["text"]["div"]
    assert plan.content["supportingInfo"] == [{"reference": f"QuestionnaireResponse/{second}"}]
    assert plan.content["created"] == "2026-12-01T10:00:00Z"  # first made then, revised since
    with db.session(readonly=True) as session:
        found = assessments.discharge_plan_of(session, CASE_MANAGER, PATIENT)
    assert found is not None and found["id"] == "sp-discharge"  # the safety plan is not it


def test_the_open_review_task_is_completed_with_the_plan_as_output(db):
    _post(db, response())
    task = _read(db, "Task/sp-review").content
    assert task["status"] == "completed"
    outputs = [o["valueReference"]["reference"] for o in task["output"]]
    assert f"CarePlan/{assessments.plan_id(PATIENT)}" in outputs


def _task(db: Any, task_id: str, **changes: Any) -> dict[str, Any]:
    with db.session() as session:
        task = resources.read(session, "Task", task_id, CASE_MANAGER).content
        task = {**task, **changes}
        resources.update(session, "Task", task_id, task, SYSTEM)
    return _read(db, f"Task/{task_id}").content


def _new_review(db: Any, status: str, authored: str) -> str:
    """A review Task as the screening rules add one (held as draft in review mode)."""
    task = {
        **_read(db, "Task/sp-review").content,
        "status": status,
        "authoredOn": authored,
    }
    for field in ("output", "businessStatus", "id", "meta"):
        task.pop(field, None)
    with db.session() as session:
        stored = resources.create(session, "Task", task, SYSTEM).stored
        assert stored is not None
        return stored.res_id


def test_a_review_held_for_approval_is_completed_when_released_after_the_plan(db):
    held = _new_review(db, "draft", "2026-12-01T08:00:00Z")
    _post(db, response(authored="2026-12-01T10:00:00Z"))
    assert _read(db, f"Task/{held}").content["status"] == "draft"  # the reviewer's to release
    released = _task(db, held, status="requested")  # approved after the plan was made
    assert released["status"] == "completed"


def test_a_review_asked_for_after_the_latest_plan_stays_open(db):
    _post(db, response(authored="2026-12-01T10:00:00Z"))
    assert _read(db, "Task/sp-review").content["status"] == "completed"
    later = _new_review(db, "requested", "2026-12-05T09:00:00Z")  # a new positive screening
    assert _read(db, f"Task/{later}").content["status"] == "requested"


def test_an_in_progress_response_makes_no_plan(db):
    _post(db, {**response(), "status": "in-progress"})
    with db.session(readonly=True) as session:
        assert assessments.safety_plan_of(session, CASE_MANAGER, PATIENT) is None
    assert _read(db, "Task/sp-review").content["status"] == "requested"


def test_a_plan_that_could_not_be_printed_whole_is_refused_with_the_reason(db):
    doc = response()
    doc["item"].append({"linkId": "favourite-colour", "answer": [{"valueString": "blue"}]})
    with pytest.raises(BusinessRule, match="favourite-colour"):  # named, by whichever check
        _post(db, doc)
    long = response(warning="x" * 1200)
    with pytest.raises(BusinessRule, match="longer than 1000"):
        _post(db, long)


def test_a_writer_who_may_not_write_care_plans_cannot_make_one(db):
    # an app allowed to record responses and read the record, not to write care plans
    recorder = Caller(
        client_id="kiosk",
        role="case-manager",
        scopes=frozenset({"system/QuestionnaireResponse.crs", "system/*.rs"}),
    )
    with pytest.raises(Forbidden, match="safety-plan CarePlan, which you may not write"):
        _post(db, response(), recorder)
    with db.session(readonly=True) as session:  # the response went with the refusal
        assert assessments.safety_plan_of(session, CASE_MANAGER, PATIENT) is None


# -- sharing with the family, only under the patient's consent ----------------------------------


def _share(db: Any, person: str) -> Any:
    settings = Settings(database_url="sqlite://", base_url=None)
    with db.session() as session:
        return assessments.share_with_family(session, CASE_MANAGER, settings, PATIENT, person)


def _messages(db: Any, person: str) -> list[dict[str, Any]]:
    with db.session(readonly=True) as session:
        found = assessments.family_of(session, CASE_MANAGER, PATIENT)  # both are on the team
        assert set(found) == {"RelatedPerson/sp-sister", "RelatedPerson/sp-uncle"}
        from fhir_gateway.services.lookup import search

        return search(session, "Communication", [("recipient", person)])


def test_the_plan_goes_to_the_sister_the_patient_consented_to(db):
    _post(db, response())
    decision = _share(db, "RelatedPerson/sp-sister")
    assert decision.permitted, decision.reason
    (message,) = _messages(db, "RelatedPerson/sp-sister")
    text = message["payload"][0]["contentString"]
    assert "I stop answering my phone" in text and "988" in text
    assert message["basedOn"][0]["reference"].startswith("CommunicationRequest/")
    assert {"code": "PSY"}.items() <= message["meta"]["security"][0].items()


def test_the_plan_is_refused_for_the_uncle_with_the_reason_and_nothing_sent(db):
    _post(db, response())
    decision = _share(db, "RelatedPerson/sp-uncle")
    assert not decision.permitted
    assert "has not consented to share" in decision.reason and "Jorge Alvarez" in decision.reason
    assert _messages(db, "RelatedPerson/sp-uncle") == []


def test_a_revoked_consent_stops_the_sharing(db):
    _post(db, response())
    with db.session() as session:
        consent = resources.read(session, "Consent", "sp-consent", CASE_MANAGER).content
        resources.update(
            session, "Consent", "sp-consent", {**consent, "status": "inactive"}, CASE_MANAGER
        )
    decision = _share(db, "RelatedPerson/sp-sister")
    assert not decision.permitted
    assert "no Consent for Lucia Alvarez" in decision.reason  # the inactive one counts no more
    assert _messages(db, "RelatedPerson/sp-sister") == []


def test_through_the_rest_api_the_plan_is_served_as_valid_fhir(client, database):
    # the ``client`` app checks every FHIR body it emits against the R4 schema and profile rules
    seed_patient(database)
    posted = client.post("/QuestionnaireResponse", json=response())
    assert posted.status_code == 201, posted.text
    plan = client.get(f"/CarePlan/{assessments.plan_id(PATIENT)}")
    assert plan.status_code == 200
    assert plan.json()["supportingInfo"] == [
        {"reference": f"QuestionnaireResponse/{posted.json()['id']}"}
    ]
    found = client.get("/CarePlan", params={"subject": PATIENT, "category": "safety-plan"})
    assert [e["resource"]["id"] for e in found.json()["entry"]] == [assessments.plan_id(PATIENT)]
    assert client.get("/Task/sp-review").json()["status"] == "completed"
