"""The templates' FHIRPath in plain Python gives what fhirpathpy gives, on every shipped expression
and a spread of discharge contexts (codes, systems, missing parts, odd data that falls back)."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from fhir_gateway.careplans._context import ICD10_SYSTEMS
from fhir_gateway.careplans._fhirpath import TemplateError, compiled, evaluate
from fhir_gateway.careplans._plainpath import Unplain, _narrowing, plain
from fhir_gateway.careplans._seed import SHIPPED_TEMPLATES
from fhir_gateway.careplans._templates import TEMPLATE_TYPES, expressions, read_directory

EXPRESSIONS = sorted(
    {e for doc in read_directory(SHIPPED_TEMPLATES, TEMPLATE_TYPES) for e in expressions(doc)}
)
ICD = "http://hl7.org/fhir/sid/icd-10-cm"


def _condition(n: int, *codings: dict[str, Any]) -> dict[str, Any]:
    return {"resourceType": "Condition", "id": f"c{n}", "code": {"coding": list(codings)}}


CONDITIONS = [
    _condition(1, {"system": ICD, "code": "F32.1"}),
    _condition(2, {"system": ICD, "code": "f20.9"}),  # lower case: upper() matches it
    _condition(3, {"system": "http://snomed.info/sct", "code": "F31"}),  # not ICD-10
    _condition(4, {"code": "F43.1"}),  # no system
    _condition(5, {"system": ICD, "code": "F17.210"}, {"system": ICD, "code": "Z59.0"}),
    _condition(6, {"system": ICD, "code": "X78.0XXA"}, {"system": ICD, "code": "T43.222A"}),
    {"resourceType": "Condition", "id": "c7"},  # no code
    _condition(8, {"system": ICD, "code": "Z56.0"}, {"system": ICD, "code": "F10.20"}),
]
ENCOUNTERS: list[Any] = [
    [],
    {"resourceType": "Encounter", "id": "e1", "serviceType": {"coding": [{"code": "psych"}]}},
    {"resourceType": "Encounter", "id": "e2", "serviceType": {"text": "Mental health"}},
    {
        "resourceType": "Encounter",
        "id": "e3",
        "serviceType": {"coding": [{"code": "MED"}]},
        "hospitalization": {"dischargeDisposition": {"coding": [{"code": "exp"}]}},
    },
]
PATIENTS = [
    {"resourceType": "Patient", "id": "p1"},
    {"resourceType": "Patient", "id": "p2", "deceasedBoolean": False},
    {"resourceType": "Patient", "id": "p3", "deceasedBoolean": True},
    {"resourceType": "Patient", "id": "p4", "address": [{"line": ["No fixed abode"]}]},
]


def _contexts() -> list[dict[str, Any]]:
    out = []
    subsets = [CONDITIONS[i : i + 2] for i in range(0, len(CONDITIONS), 2)] + [[], CONDITIONS]
    for conditions, encounter, patient in itertools.product(subsets, ENCOUNTERS, PATIENTS):
        out.append(
            {
                "patient": patient,
                "encounter": encounter,
                "conditions": conditions,
                "principal": conditions[:1],
                "relatedPersons": [],
                "icd10": list(ICD10_SYSTEMS),
                "dischargeDate": "2026-01-02",
            }
        )
    return out


def _fhirpathpy(expression: str, variables: dict[str, Any]) -> list[Any]:
    return list(compiled(expression)({}, dict(variables)))


def test_the_shipped_diagnosis_conditions_are_evaluated_in_plain_python() -> None:
    diagnosis = [e for e in EXPRESSIONS if "%icd10" in e]
    assert diagnosis and all(plain(e) is not None for e in diagnosis)


@pytest.mark.parametrize("expression", EXPRESSIONS, ids=lambda e: e[:60])
def test_plain_python_gives_what_fhirpathpy_gives(expression: str) -> None:
    fast = plain(expression)
    if fast is None:
        pytest.skip("left to fhirpathpy")
    for variables in _contexts():
        assert fast(variables) == _fhirpathpy(expression, variables), variables


@pytest.mark.parametrize(
    "coding",
    [{"system": ICD, "code": 32}, {"system": ICD, "code": "."}, {"system": ICD, "_code": {}}],
)
def test_data_the_plain_code_does_not_cover_goes_to_fhirpathpy(coding: dict[str, Any]) -> None:
    expression = next(e for e in EXPRESSIONS if "F3[23]" in e and e.endswith(".exists()"))
    variables = {**_contexts()[0], "conditions": [_condition(9, coding)]}
    with pytest.raises(Unplain):
        plain(expression)(variables)  # type: ignore[misc]
    try:
        expected: Any = _fhirpathpy(expression, variables)
    except Exception:
        expected = TemplateError
    try:
        got: Any = evaluate(expression, variables)
    except TemplateError:
        got = TemplateError
    assert got == expected


def test_dynamic_values_are_copies_of_the_context() -> None:
    expression = next(e for e in EXPRESSIONS if "F3[23]" in e and not e.endswith(".exists()"))
    variables = {**_contexts()[0], "conditions": [CONDITIONS[0]]}
    found = evaluate(expression, variables)
    assert found == [CONDITIONS[0]] and found[0] is not CONDITIONS[0]


@pytest.mark.parametrize(
    ("operand", "narrowed"),
    [
        ("%encounter.serviceType.where(text = 'x').exists()", ("encounter", "serviceType")),
        ("%patient.deceased != false", ("patient", "deceased")),
        ("%patient.birthDate > today()", None),  # reads the clock: evaluated every time
        ("%patient.gender = %encounter.status", None),  # two variables
        ("%conditions.exists()", None),  # no element
    ],
)
def test_an_operand_is_remembered_by_value_only_when_it_reads_one_element(
    operand: str, narrowed: tuple[str, str] | None
) -> None:
    assert _narrowing(operand) == narrowed


def test_a_remembered_operand_answers_for_each_value_of_its_element() -> None:
    expression = next(e for e in EXPRESSIONS if e.startswith("(%encounter.serviceType"))
    fast = plain(expression)
    assert fast is not None
    answers = []
    for encounter in [*ENCOUNTERS, ENCOUNTERS[1], ENCOUNTERS[3], ENCOUNTERS[2]]:
        variables = {**_contexts()[0], "encounter": encounter, "principal": CONDITIONS[:1]}
        assert fast(variables) == _fhirpathpy(expression, variables)
        answers.append(fast(variables))
    assert len({str(a) for a in answers}) > 1  # the element changes the answer
