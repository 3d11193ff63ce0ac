"""The treating partner's rule on its own (``privacy.treating_partner_relapse_rule``): a report of
its own about a patient it treats, basedOn that referral, and nothing else."""

from __future__ import annotations

from typing import Any

import pytest

from fhir_gateway import privacy

HARBOR = "Organization/harbor"
TREATED = {"Patient/ravi": ["ServiceRequest/sr1"]}


def _report(**changes: Any) -> dict[str, Any]:
    doc = {
        "resourceType": "QuestionnaireResponse",
        "questionnaire": f"{privacy.WARNING_SIGNS_REPORT_URL}|1.0.0",
        "status": "completed",
        "subject": {"reference": "Patient/ravi"},
        "author": {"reference": HARBOR},
        "basedOn": [{"reference": "ServiceRequest/sr1"}],
        "item": [
            {
                "linkId": "reporter",
                "answer": [{"valueCoding": {"code": privacy.PARTNER_REPORTER}}],
            }
        ],
    }
    return {**doc, **changes}


def test_its_own_report_on_its_referral_is_allowed():
    assert privacy.treating_partner_relapse_rule(_report(), HARBOR, TREATED).ok


CASES = {
    "a PHQ-9": (_report(questionnaire="http://loinc.org/q/44249-1"), "forbidden"),
    "the plan": (_report(questionnaire=privacy.RELAPSE_PLAN_URL), "forbidden"),
    "another patient": (_report(subject={"reference": "Patient/mira"}), "not-found"),
    "a group as subject": (_report(subject={"reference": "Group/g"}), "not-found"),
    "as another organisation": (_report(author={"reference": "Organization/x"}), "forbidden"),
    "as a person": (_report(author={"display": "Lakshmi"}), "forbidden"),
    "as the family": (
        _report(item=[{"linkId": "reporter", "answer": [{"valueCoding": {"code": "family"}}]}]),
        "forbidden",
    ),
    "with no reporter": (_report(item=[]), "forbidden"),
    "on no referral": (_report(basedOn=[]), "invalid"),
    "on a care plan": (_report(basedOn=[{"reference": "CarePlan/cp1"}]), "invalid"),
    "also on another referral": (
        _report(basedOn=[{"reference": "ServiceRequest/sr1"}, {"reference": "ServiceRequest/x"}]),
        "invalid",
    ),
}


@pytest.mark.parametrize("case", list(CASES))
def test_anything_else_is_refused(case):
    doc, outcome = CASES[case]
    decision = privacy.treating_partner_relapse_rule(doc, HARBOR, TREATED)
    assert decision.outcome == outcome and decision.why


def test_the_treating_statuses_are_a_referral_taken_on_and_not_over():
    assert set(privacy.TREATING_STATUSES) == {"accepted", "in-progress", "on-hold"}
