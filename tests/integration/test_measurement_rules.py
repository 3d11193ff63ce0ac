"""The measurement rules on the gateway's writes, without the intake: a draft plan's measurements
wait for its approval, a withdrawn plan cancels them, and a response completes the due one only
with the rights of a writer who may update Tasks (a client that may only record questionnaires
leaves it to the case team)."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from workflow_helpers import ManualClock

from fhir_gateway import assessments, careplans
from fhir_gateway.app import install_rules
from fhir_gateway.assessments import schedule_plan
from fhir_gateway.context import SYSTEM
from fhir_gateway.security import TokenCaller
from fhir_gateway.services import lookup, resources
from fhir_gateway.settings import Settings

DISCHARGED = datetime(2026, 3, 2, 18, 0, tzinfo=UTC)  # Mon 2 Mar, noon in Chicago
CASE_MANAGER = TokenCaller(
    client_id="cm", role="case-manager", scopes=frozenset({"system/*.cruds"})
)
FORMS_APP = TokenCaller(  # a client registered to record questionnaires, and nothing else
    client_id="forms-app",
    role="case-manager",
    scopes=frozenset({"system/QuestionnaireResponse.cru", "system/Observation.cru"}),
)


def _plan(status: str) -> dict:
    return {
        "resourceType": "CarePlan",
        "id": "plan-1",
        "status": status,
        "intent": "plan",
        "subject": {"reference": "Patient/p1"},
    }


def _response(res_id: str, authored: str) -> dict:
    return {
        "resourceType": "QuestionnaireResponse",
        "id": res_id,
        "questionnaire": "http://fhir-gateway.org/fhir/Questionnaire/phq-9|1.0.0",
        "status": "completed",
        "subject": {"reference": "Patient/p1"},
        "authored": authored,
    }


def _statuses(session) -> dict[str, str]:  # type: ignore[no-untyped-def]
    plan = lookup.read(session, "CarePlan/plan-1") or {}
    refs = [a["reference"]["reference"] for a in plan.get("activity", [])]
    tasks = [lookup.read(session, r) or {} for r in refs]
    return {t["identifier"][0]["value"].split("|")[1]: t["status"] for t in tasks}


def test_approval_withdrawal_and_the_writers_rights(database) -> None:  # type: ignore[no-untyped-def]
    ManualClock(DISCHARGED)
    settings = Settings(database_url="sqlite://")
    install_rules(settings, database)  # the write rules, as every process that writes has them
    database.write(careplans.seed, settings)
    database.write(assessments.seed, settings)  # the instruments a response is checked against
    with database.session() as session:
        resources.update(session, "Patient", "p1", {"resourceType": "Patient", "id": "p1"}, SYSTEM)
        resources.update(session, "CarePlan", "plan-1", _plan("draft"), SYSTEM)
        plan = lookup.read(session, "CarePlan/plan-1")
        assert plan is not None
        assert len(schedule_plan(session, plan, DISCHARGED, ZoneInfo("America/Chicago"))) == 8
        assert schedule_plan(session, plan, DISCHARGED, ZoneInfo("America/Chicago")) == []
        assert set(_statuses(session).values()) == {"draft"}  # waiting for the plan's approval

    with database.session() as session:
        current = lookup.read(session, "CarePlan/plan-1") or {}
        resources.update(session, "CarePlan", "plan-1", {**current, "status": "active"}, SYSTEM)
        assert set(_statuses(session).values()) == {"requested"}

    with database.session() as session:  # day 14 (window day 11..17): a forms app's response
        resources.create(
            session, "QuestionnaireResponse", _response("x", "2026-03-16T10:00:00-05:00"), FORMS_APP
        )
        assert _statuses(session)["phq-9-day-14"] == "requested"  # it may not update Tasks
        resources.create(
            session,
            "QuestionnaireResponse",
            _response("y", "2026-03-16T11:00:00-05:00"),
            CASE_MANAGER,
        )
        statuses = _statuses(session)
        assert statuses["phq-9-day-14"] == "completed" and statuses["gad-7-day-14"] == "requested"

    with database.session() as session:
        current = lookup.read(session, "CarePlan/plan-1") or {}
        resources.update(session, "CarePlan", "plan-1", {**current, "status": "revoked"}, SYSTEM)
        statuses = _statuses(session)
        assert statuses.pop("phq-9-day-14") == "completed"  # what was done stays done
        assert set(statuses.values()) == {"cancelled"}


def test_a_case_manager_whose_assignment_ended_is_not_given_measurements(database) -> None:  # type: ignore[no-untyped-def]
    """The plan's care team ended one case manager's participation and assigned another: the
    measurement goes to the one who looks after the patient now."""
    from fhir_gateway.assessments._schedule import owner_for
    from fhir_gateway.fhir import care_team

    def assigned(practitioner: str, **period: str) -> dict[str, object]:
        return {
            "role": [care_team.ASSIGNED_ROLE],
            "member": {"reference": practitioner},
            "period": {"start": "2026-01-01", **period},
        }

    def owner(participants: list[dict[str, object]]) -> object:
        def run(session):  # type: ignore[no-untyped-def]
            team = resources.create(
                session,
                "CareTeam",
                {"resourceType": "CareTeam", "status": "active", "participant": participants},
                SYSTEM,
            )
            assert team.stored is not None
            plan = {"careTeam": [{"reference": f"CareTeam/{team.stored.res_id}"}]}
            return owner_for(session, plan)

        return database.write(run)

    ended = assigned("Practitioner/before", end="2026-06-01")
    assert owner([ended, assigned("Practitioner/now")]) == {"reference": "Practitioner/now"}
    assert owner([ended]) is None  # nobody yet: the worklist shows it as the case team's
