"""The gateway's adherence codes (``http://fhir-gateway.org/fhir/CodeSystem/adherence``): one PDC
code per medication class (``pdc-<ValueSet id>``, so a class added as data has its code), the
components of a PDC Observation, and the long-acting-injectable topic of the injectable table."""

from __future__ import annotations

from typing import Any

from fhir_gateway.adherence._catalog import MedClass, MedicationCatalog

__all__ = [
    "ADHERENCE",
    "DAYS_COVERED",
    "DAYS_MEASURED",
    "DAYS_IN_HOSPITAL",
    "pdc_code",
    "pdc_coding",
    "component_coding",
    "codesystem",
]

ADHERENCE = "http://fhir-gateway.org/fhir/CodeSystem/adherence"
DAYS_COVERED = "days-covered"
DAYS_MEASURED = "days-measured"
DAYS_IN_HOSPITAL = "days-in-hospital"
_COMPONENTS = {
    DAYS_COVERED: ("Days covered", "Measured days on which the class's medication was on hand."),
    DAYS_MEASURED: (
        "Days measured",
        "Days of the window from the first fill (or the window's start) to its end, hospital "
        "days left out: the PDC's denominator.",
    ),
    DAYS_IN_HOSPITAL: (
        "Days in hospital",
        "Days of an inpatient stay in the measured period, left out of numerator and denominator.",
    ),
    "long-acting-injectable": (
        "Long-acting injectable",
        "A product in the long-acting injectable table: an injection covers its dosing interval.",
    ),
}


def pdc_code(med_class: MedClass) -> str:
    return f"pdc-{med_class.id}"


def pdc_coding(med_class: MedClass) -> dict[str, str]:
    return {
        "system": ADHERENCE,
        "code": pdc_code(med_class),
        "display": f"Proportion of days covered: {med_class.title.lower()}",
    }


def component_coding(code: str) -> dict[str, str]:
    return {"system": ADHERENCE, "code": code, "display": _COMPONENTS[code][0]}


def codesystem(catalog: MedicationCatalog) -> dict[str, Any]:
    concepts = [
        {
            "code": pdc_code(c),
            "display": pdc_coding(c)["display"],
            "definition": f"Proportion of days covered by {c.title.lower()} ({c.url}) over the "
            "rolling window: days covered ÷ days measured.",
        }
        for c in catalog.classes
    ] + [{"code": k, "display": d, "definition": text} for k, (d, text) in _COMPONENTS.items()]
    return {
        "resourceType": "CodeSystem",
        "id": "adherence",
        "url": ADHERENCE,
        "version": "1",
        "name": "Adherence",
        "title": "fhir-gateway medication adherence codes",
        "status": "active",
        "experimental": False,
        "publisher": "fhir-gateway",
        "description": "Proportion of days covered per medication class and its components.",
        "caseSensitive": True,
        "content": "complete",
        "count": len(concepts),
        "concept": concepts,
    }
