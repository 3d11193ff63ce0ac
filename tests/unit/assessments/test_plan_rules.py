"""The shipped plan rules (mappings/assessments/PlanDefinition-assessment-response.json) over
scored results shaped as the instruments store them, and the AHC-HRSN → SDOH map (pure)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import mappings
from fhir_gateway.assessments import build_rules, read_map
from fhir_gateway.assessments._revise import authored_at, written
from fhir_gateway.careplans import TemplateError

SHIPPED = Path(mappings.__file__).parent / "assessments"
LOINC = "http://loinc.org"
SDOHCC = "http://hl7.org/fhir/us/sdoh-clinicalcare/CodeSystem/SDOHCC-CodeSystemTemporaryCodes"
ABSENT = {
    "coding": [
        {"system": "http://terminology.hl7.org/CodeSystem/data-absent-reason", "code": "unknown"}
    ]
}


def shipped(name: str) -> dict[str, Any]:
    return dict(orjson.loads((SHIPPED / f"{name}.json").read_bytes()))


_BOUNDED = settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
RULES = build_rules([shipped("PlanDefinition-assessment-response")])


def result(code: str, **value: Any) -> dict[str, Any]:
    return {
        "resourceType": "Observation",
        "status": "final",
        "code": {"coding": [{"system": LOINC, "code": code}]},
        "subject": {"reference": "Patient/1"},
        **value,
    }


def coded(code: str) -> dict[str, Any]:
    return {"valueCodeableConcept": {"coding": [{"system": LOINC, "code": code}]}}


def concern(domain: str, *, status: str = "active") -> dict[str, Any]:
    return {
        "resourceType": "Condition",
        "clinicalStatus": {"coding": [{"code": status}]},
        "verificationStatus": {"coding": [{"code": "unconfirmed"}]},
        "category": [
            {
                "coding": [
                    {
                        "system": "http://hl7.org/fhir/us/core/CodeSystem/condition-category",
                        "code": "health-concern",
                    }
                ]
            },
            {"coding": [{"system": SDOHCC, "code": domain}]},
        ],
        "subject": {"reference": "Patient/1"},
    }


def fired(resource: dict[str, Any]) -> list[str]:
    return [f.rule.action_id for f in RULES.fired(resource)]


@pytest.mark.parametrize(
    ("resource", "expected"),
    [
        (result("93374-7", **coded("LA9193-9")), ["c-ssrs-positive"]),  # high
        (result("93374-7", **coded("LA6751-7")), ["c-ssrs-positive"]),  # moderate
        (result("93374-7", **coded("LA9194-7")), []),  # low: ideation without a method
        (result("93374-7", **coded("LA137-2")), []),  # none
        (result("44260-8", **coded("LA6569-3")), ["phq-9-item-9-positive"]),
        (result("44260-8", **coded("LA6571-9")), ["phq-9-item-9-positive"]),
        (result("44260-8", **coded("LA6568-5")), []),  # not at all
        (result("44261-6", valueInteger=20), ["phq-9-severe"]),
        (result("44261-6", valueInteger=19), []),
        (result("70274-6", valueInteger=21), []),  # GAD-7: no rule
        (concern("homelessness"), ["housing-positive"]),
        (concern("housing-instability"), ["housing-positive"]),
        (concern("inadequate-housing"), ["housing-positive"]),
        (concern("housing-instability", status="resolved"), []),
        (concern("food-insecurity"), []),
    ],
)
def test_which_results_fire_which_rule(resource: dict[str, Any], expected: list[str]) -> None:
    assert fired(resource) == expected


def test_the_rules_say_what_they_do() -> None:
    by_id = {r.action_id: r for r in RULES.rules}
    crisis = by_id["c-ssrs-positive"]
    assert crisis.alert == ("suicide-risk",) and crisis.priority == "PH"
    assert [a.rsplit("/", 1)[-1] for a in crisis.activities] == [
        "screening-safety-plan-review",
        "screening-follow-up-call",
    ]
    assert by_id["phq-9-item-9-positive"].activities == crisis.activities
    assert by_id["housing-positive"].alert == () and by_id["phq-9-severe"].alert == ()
    assert RULES.types == {"Observation", "Condition"}


@_BOUNDED
@given(
    code=st.sampled_from(["93374-7", "44260-8", "44261-6"]),
    value=st.one_of(
        st.builds(coded, st.sampled_from(["LA9193-9", "LA6751-7", "LA6571-9", "LA6569-3"])),
        st.builds(lambda n: {"valueInteger": n}, st.integers(0, 27)),
        st.just({}),
    ),
)
def test_an_unanswered_result_never_fires_whatever_else_it_says(code: str, value: dict) -> None:
    assert fired(result(code, dataAbsentReason=ABSENT, **value)) == []
    assert fired(result(code, **{**value, "status": "entered-in-error"})) == []


def test_a_rule_that_would_not_run_is_refused_when_written() -> None:
    plan = shipped("PlanDefinition-assessment-response")
    action = plan["action"][0]
    for bad in ("%resource.value >= (", "%resource.value.where("):
        broken = {
            **plan,
            "action": [
                {
                    **action,
                    "condition": [
                        {
                            "kind": "applicability",
                            "expression": {"language": "text/fhirpath", "expression": bad},
                        }
                    ],
                }
            ],
        }
        with pytest.raises(TemplateError, match="FHIRPath"):
            build_rules([broken])
    with pytest.raises(TemplateError, match="trigger"):
        build_rules([{**plan, "action": [{**action, "trigger": []}]}])


def test_plans_that_are_not_rules_or_not_active_are_ignored() -> None:
    plan = shipped("PlanDefinition-assessment-response")
    assert build_rules([{**plan, "status": "retired"}]).rules == []
    discharge = dict(
        orjson.loads((SHIPPED.parent / "careplans" / "PlanDefinition-depression.json").read_bytes())
    )
    assert build_rules([discharge]).rules == []


def test_the_shipped_sdoh_map_knows_domains_and_positive_answers() -> None:
    sdoh = read_map(shipped("ConceptMap-ahc-hrsn-sdoh"))
    assert sdoh.questionnaire == "http://fhir-gateway.org/fhir/Questionnaire/ahc-hrsn-core"
    assert sdoh.domain("71802-3")["code"] == "housing-instability"  # type: ignore[index]
    assert sdoh.domain("93030-5")["code"] == "transportation-insecurity"  # type: ignore[index]
    homeless = sdoh.concern("71802-3", "LA31995-6")
    assert homeless is not None and homeless.domain["code"] == "homelessness"
    assert {c["code"] for c in homeless.codes} == {"32911000", "Z59.00"}
    assert sdoh.concern("71802-3", "LA31993-1") is None  # a steady place to live
    assert sdoh.concern("96778-6", "LA9-3") is None  # no housing problems
    assert sdoh.concern("96779-4", "LA32002-0").domain["code"] == "utility-insecurity"  # type: ignore[union-attr]
    assert sdoh.concern("93030-5", "LA33-6").domain["code"] == "transportation-insecurity"  # type: ignore[union-attr]
    assert sdoh.concern("96779-4", "LA32-8") is None  # "No" to the utilities question


_target = st.fixed_dictionaries(
    {
        "code": st.text(max_size=5),
        "equivalence": st.sampled_from(["wider", "relatedto", "unmatched"]),
    },
    optional={
        "dependsOn": st.lists(st.fixed_dictionaries({"value": st.text(max_size=5)}), max_size=2),
        "product": st.lists(
            st.fixed_dictionaries({"system": st.text(max_size=5), "value": st.text(max_size=5)}),
            max_size=2,
        ),
    },
)
_map = st.fixed_dictionaries(
    {
        "resourceType": st.just("ConceptMap"),
        "group": st.lists(
            st.fixed_dictionaries(
                {
                    "element": st.lists(
                        st.fixed_dictionaries(
                            {"code": st.text(max_size=5), "target": st.lists(_target, max_size=3)}
                        ),
                        max_size=4,
                    )
                },
                optional={"target": st.text(max_size=5)},
            ),
            max_size=3,
        ),
    },
    optional={"sourceUri": st.text(max_size=10)},
)


@_BOUNDED
@given(_map)
def test_any_map_reads_without_error_and_maps_only_what_it_says(doc: dict) -> None:
    sdoh = read_map(doc)
    targets = [
        t
        for g in doc["group"]
        for e in g["element"]
        for t in e["target"]
        if t["equivalence"] != "unmatched" and t["code"]
    ]
    with_question = [t for t in targets if any(d["value"] for d in t.get("dependsOn", []))]
    assert len(sdoh.domains) <= len(targets) - len(with_question)
    for (_question, _answer), found in sdoh.positive.items():
        assert found.domain["code"] in {t["code"] for t in with_question}


def test_the_clock_of_an_added_activity_starts_when_the_screening_was_answered() -> None:
    screened = result("44261-6", effectiveDateTime="2025-03-12T09:30:00-05:00")
    assert authored_at(screened).isoformat() == "2025-03-12T09:30:00-05:00"
    period = result("44261-6", effectivePeriod={"start": "2025-03-12T14:30:00Z"})
    assert authored_at(period).isoformat() == "2025-03-12T14:30:00+00:00"
    housing = {**concern("homelessness"), "onsetDateTime": "2025-03-12T09:30:00-05:00"}
    assert authored_at(housing) == authored_at(screened)


def test_a_note_says_when_in_words_at_the_facilitys_offset() -> None:
    """Stored texts (a Flag, a plan note) keep their words: a date and a clock time, not ISO."""
    chicago = authored_at(result("44261-6", effectiveDateTime="2025-03-12T09:30:00-05:00"))
    assert written(chicago) == "Wed 12 Mar 2025, 9:30 am (UTC-05:00)"
    bengaluru = authored_at(result("44261-6", effectiveDateTime="2025-03-12T21:05:00+05:30"))
    assert written(bengaluru) == "Wed 12 Mar 2025, 9:05 pm (UTC+05:30)"
    utc = authored_at(result("44261-6", effectiveDateTime="2025-03-12T00:00:00Z"))
    assert written(utc) == "Wed 12 Mar 2025, 12:00 am (UTC)"
