"""Test copies of the instruments measurement-based care asks for (PHQ-9, GAD-7), shaped as the
instruments' contract publishes them (linkId "/" + the item's LOINC code, LOINC answers with SDC
itemWeight, the total read-only). Only for tests: the shipped ones live in mappings/assessments."""

from __future__ import annotations

from typing import Any

LOINC = "http://loinc.org"
WEIGHT = "http://hl7.org/fhir/StructureDefinition/itemWeight"
ANSWERS = (
    ("LA6568-5", "Not at all", 0),
    ("LA6569-3", "Several days", 1),
    ("LA6570-1", "More than half the days", 2),
    ("LA6571-9", "Nearly every day", 3),
)
PHQ9_ITEMS = (
    ("44250-9", "Little interest or pleasure in doing things"),
    ("44255-8", "Feeling down, depressed, or hopeless"),
    ("44259-0", "Trouble falling or staying asleep, or sleeping too much"),
    ("44254-1", "Feeling tired or having little energy"),
    ("44251-7", "Poor appetite or overeating"),
    ("44258-2", "Feeling bad about yourself"),
    ("44252-5", "Trouble concentrating on things"),
    ("44253-3", "Moving or speaking so slowly that other people could have noticed"),
    ("44260-8", "Thoughts that you would be better off dead, or of hurting yourself"),
)
GAD7_ITEMS = (
    ("69725-0", "Feeling nervous, anxious or on edge"),
    ("68509-9", "Not being able to stop or control worrying"),
    ("69733-4", "Worrying too much about different things"),
    ("69734-2", "Trouble relaxing"),
    ("69735-9", "Being so restless that it is hard to sit still"),
    ("69689-8", "Becoming easily annoyed or irritable"),
    ("69736-7", "Feeling afraid as if something awful might happen"),
)


def _option(code: str, display: str, weight: int) -> dict[str, Any]:
    return {
        "extension": [{"url": WEIGHT, "valueDecimal": weight}],
        "valueCoding": {"system": LOINC, "code": code, "display": display},
    }


def _item(code: str, text: str) -> dict[str, Any]:
    return {
        "linkId": f"/{code}",
        "code": [{"system": LOINC, "code": code}],
        "text": text,
        "type": "choice",
        "required": True,
        "answerOption": [_option(*a) for a in ANSWERS],
    }


def questionnaire(key: str, title: str, panel: str, total: str, items: Any) -> dict[str, Any]:
    return {
        "resourceType": "Questionnaire",
        "id": key,
        "url": f"http://fhir-gateway.org/fhir/Questionnaire/{key}",
        "version": "1.0.0",
        "name": key.replace("-", "").upper(),
        "title": title,
        "status": "active",
        "subjectType": ["Patient"],
        "code": [{"system": LOINC, "code": panel}],
        "copyright": "Test copy. The PHQ and GAD-7 were developed by Drs. Spitzer, Williams, "
        "Kroenke and colleagues with an educational grant from Pfizer Inc.",
        "item": [
            *(_item(c, t) for c, t in items),
            {"linkId": f"/{total}", "text": "Total score", "type": "integer", "readOnly": True},
        ],
    }


PHQ9 = questionnaire("phq-9", "PHQ-9", "44249-1", "44261-6", PHQ9_ITEMS)
GAD7 = questionnaire("gad-7", "GAD-7", "69737-5", "70274-6", GAD7_ITEMS)


def total(patient: str, code: str, value: int, when: str, obs_id: str) -> dict[str, Any]:
    """A scored total as the instruments store it (here written directly by the test)."""
    return {
        "resourceType": "Observation",
        "id": obs_id,
        "status": "final",
        "category": [
            {
                "coding": [
                    {
                        "system": "http://terminology.hl7.org/CodeSystem/observation-category",
                        "code": "survey",
                    }
                ]
            }
        ],
        "code": {"coding": [{"system": LOINC, "code": code}], "text": "PHQ-9 total score"},
        "subject": {"reference": patient},
        "effectiveDateTime": when,
        "valueInteger": value,
    }
