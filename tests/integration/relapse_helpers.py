"""The relapse tests' world: Ravi Kumar (schizophrenia, discharged in March) and the relapse-prevention
plan he made with his mother and his case manager: five warning signs in his words, what to do at
each stage, and when a report should reach the case manager (3 early signs, 2 middle, any late)."""

from __future__ import annotations

from typing import Any

from fhir_gateway.context import Caller
from fhir_gateway.relapse import PLAN_URL, REPORT_URL, REPORTER_SYSTEM, SIGN_SYSTEM, STAGE_SYSTEM
from fhir_gateway.services import resources
from fhir_gateway.store.db import Database

CASE_MANAGER = Caller(client_id="carla", role="case-manager", scopes=frozenset({"system/*.cruds"}))
SIGNS = {  # item id → (the sign in Ravi's words, stage, who notices)
    "sleep": ("Up all night, sleeping less than four hours", "early", "my mother"),
    "calls": ("Not answering my sister's calls", "early", "my sister"),
    "tea": ("Stop drinking tea with the family in the evening", "early", "my mother"),
    "tv": ("Think the TV news is talking about me", "middle", "me"),
    "voices": ("Hear the neighbours plotting through the wall", "late", "my mother"),
}


def patient() -> dict[str, Any]:
    return {
        "resourceType": "Patient",
        "name": [{"family": "Kumar", "given": ["Ravi"]}],
        "birthDate": "1991-06-02",
    }


def _answer(link_id: str, **value: Any) -> dict[str, Any]:
    return {"linkId": link_id, "answer": [value]}


def plan(
    patient_ref: str,
    *,
    thresholds: tuple[int, int, int] = (3, 2, 1),
    authored: str = "2025-03-12T15:00:00Z",
) -> dict[str, Any]:
    signs = [
        {
            "id": sign_id,
            "linkId": "warning-sign",
            "item": [
                _answer("warning-sign.text", valueString=text),
                _answer("warning-sign.stage", valueCoding={"system": STAGE_SYSTEM, "code": stage}),
                _answer("warning-sign.noticed-by", valueString=who),
            ],
        }
        for sign_id, (text, stage, who) in SIGNS.items()
    ]
    actions = {
        "early": (
            "Keep to my sleep routine, take my evening dose with my mother",
            "Carla Mendes (case manager) 217-555-0101",
        ),
        "middle": (
            "See Dr Rao this week; my mother holds my medication",
            "Dr Rao's clinic 217-555-0142",
        ),
        "late": (
            "Go to the crisis clinic today with my mother",
            "Sangamon crisis line 217-555-0199",
        ),
    }
    items = signs + [
        {
            "linkId": f"action-{stage}",
            "item": [
                _answer(f"action-{stage}.do", valueString=do),
                _answer(f"action-{stage}.call", valueString=call),
            ],
        }
        for stage, (do, call) in actions.items()
    ]
    items.append(
        {
            "linkId": "threshold",
            "item": [
                _answer(f"threshold.{stage}", valueInteger=n)
                for stage, n in zip(("early", "middle", "late"), thresholds, strict=True)
            ],
        }
    )
    items.append({"linkId": "made-with", "answer": [{"valueString": "Lakshmi Kumar (mother)"}]})
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": PLAN_URL,
        "status": "completed",
        "subject": {"reference": patient_ref},
        "authored": authored,
        "item": items,
    }


def report(
    patient_ref: str,
    *signs: str,
    reporter: str = "family",
    plan_ref: str | None = None,
    status: str = "completed",
) -> dict[str, Any]:
    items: list[dict[str, Any]] = []
    if plan_ref:
        items.append(_answer("plan", valueReference={"reference": plan_ref}))
    items.append(_answer("reporter", valueCoding={"system": REPORTER_SYSTEM, "code": reporter}))
    items.append(_answer("reporter-name", valueString="Lakshmi Kumar"))
    if signs:
        items.append(
            {
                "linkId": "signs-present",
                "answer": [
                    {
                        "valueCoding": {
                            "system": SIGN_SYSTEM,
                            "code": s,
                            "display": SIGNS.get(s, ("?",))[0],
                        }
                    }
                    for s in signs
                ],
            }
        )
    return {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": REPORT_URL,
        "status": status,
        "subject": {"reference": patient_ref},
        "authored": "2025-04-02T18:30:00Z",
        "item": items,
    }


def create(database: Database, doc: dict[str, Any], caller: Caller = CASE_MANAGER) -> str:
    def run(session: Any) -> str:
        stored = resources.create(session, doc["resourceType"], doc, caller).stored
        assert stored is not None
        return str(stored.relative)

    return database.write(run)
