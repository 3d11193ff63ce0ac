"""Jane (St Mary's, Chicago) discharged, her plan approved, then screened at high risk on the
C-SSRS in review mode: the two activities the plan rules added wait for the case manager."""

from __future__ import annotations

from typing import Any

from careplan_helpers import adt
from seeds import seed_once, seed_templates
from web_helpers import PASSWORD, USERS, _add_users

from fhir_gateway import assessments
from fhir_gateway.context import SYSTEM
from fhir_gateway.services import lookup, resources

YES, NO = assessments.YES, assessments.NO
SAFETY = "Safety-plan review within 24 hours of the screening"
CALL = "Follow-up call within 72 hours of the screening"


def answer(link: str, code: str) -> dict[str, Any]:
    return {
        "linkId": link,
        "answer": [{"valueCoding": {"system": assessments.LOINC, "code": code}}],
    }


def high_risk_screening(patient: str) -> dict[str, Any]:
    """The C-SSRS screener with thoughts of killing oneself and some intention of acting: high."""
    items = [("/93246-7", YES), ("/93247-5", YES), ("/93248-3", NO), ("/93249-1", YES)]
    items += [("/93250-9", NO), ("/93267-3", NO)]
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": assessments.CSSRS_URL,
        "status": "completed",
        "subject": {"reference": patient},
        "authored": "2025-03-12T09:30:00-05:00",
        "item": [answer(link, code) for link, code in items],
    }


def search(database: Any, res_type: str, *params: tuple[str, str]) -> list[dict[str, Any]]:
    with database.session(readonly=True) as session:
        return lookup.search(session, res_type, list(params))


def world(database: Any, app: Any) -> tuple[str, dict[str, dict[str, Any]]]:
    """Jane discharged, her plan approved, then screened at high risk: the two held additions."""
    settings = app.state.settings
    seed_once(database, ("web users", PASSWORD, tuple(USERS.items())), lambda: _add_users(database))
    seed_templates(database, settings)
    database.write(assessments.seed, settings)
    assert app.state.intake.receive_hl7(adt(), channel="http").code == "AA"
    [plan] = search(database, "CarePlan", ("status", "draft"))
    with database.session() as session:
        resources.update(session, "CarePlan", plan["id"], {**plan, "status": "active"}, SYSTEM)
        patient = plan["subject"]["reference"]
        resources.create(session, "QuestionnaireResponse", high_risk_screening(patient), SYSTEM)
    held = {
        r["code"]["text"]: r
        for r in search(database, "ServiceRequest", ("status", "draft"))
        if any(i["system"] == assessments.REVISION_SYSTEM for i in r.get("identifier", []))
    }
    return patient.split("/")[1], held
