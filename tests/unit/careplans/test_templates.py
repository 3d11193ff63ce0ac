"""The shipped templates and partner directory are valid FHIR, resolve, and are documented."""

from __future__ import annotations

from pathlib import Path

import pytest

from fhir_gateway.careplans._seed import PARTNER_TYPES, SHIPPED_PARTNERS, SHIPPED_TEMPLATES
from fhir_gateway.careplans._templates import (
    TEMPLATE_TYPES,
    TemplateSet,
    expressions,
    read_directory,
)
from fhir_gateway.fhir.validation import validate_resource

TEMPLATES = read_directory(SHIPPED_TEMPLATES, TEMPLATE_TYPES)
PARTNERS = read_directory(SHIPPED_PARTNERS, PARTNER_TYPES)


@pytest.mark.parametrize(
    "doc", TEMPLATES + PARTNERS, ids=lambda d: f"{d['resourceType']}/{d['id']}"
)
def test_shipped_resources_are_valid_r4(doc: dict) -> None:
    validate_resource(doc)


def test_every_definition_resolves_and_every_expression_compiles() -> None:
    templates = TemplateSet()
    for doc in TEMPLATES:
        templates.add(doc)  # compiles its FHIRPath
    canonicals = [
        a["definitionCanonical"]
        for d in TEMPLATES
        for a in _actions(d)
        if "definitionCanonical" in a and "/Questionnaire/" not in a["definitionCanonical"]
    ]  # the measurement schedule names Questionnaires (fhir_gateway.assessments reads it)
    assert {templates.resolve(c)["id"] for c in canonicals} == {d["id"] for d in TEMPLATES} - {
        "psychiatric-discharge",
        "measurement-based-care",
    }
    assert sum(len(expressions(d)) for d in TEMPLATES) > 10
    assert [p["id"] for p in templates.discharge_plans()] == ["psychiatric-discharge"]


def test_every_referral_service_has_a_partner_in_the_demo_directory() -> None:
    offered = {
        c["code"]
        for d in PARTNERS
        if d["resourceType"] == "HealthcareService"
        for t in d["type"]
        for c in t["coding"]
    }
    wanted = {
        c["code"]
        for d in TEMPLATES
        if d["resourceType"] == "ActivityDefinition"
        for c in d["code"]["coding"]
        if c["system"].endswith("referral-service")
    }
    assert wanted <= offered


def test_every_referral_service_is_offered_in_bengaluru_by_invented_partners() -> None:
    """The Bengaluru demo directory (areas of country IN) serves every template, in Kannada, and
    says on each resource that it is invented."""
    areas = {
        f"Location/{d['id']}"
        for d in PARTNERS
        if d["resourceType"] == "Location" and d["address"].get("country") == "IN"
    }
    services = [
        d
        for d in PARTNERS
        if d["resourceType"] == "HealthcareService"
        and {a["reference"] for a in d.get("coverageArea", [])} & areas
    ]
    offered = {c["code"] for d in services for t in d["type"] for c in t["coding"]}
    wanted = {
        c["code"]
        for d in TEMPLATES
        if d["resourceType"] == "ActivityDefinition"
        for c in d["code"]["coding"]
        if c["system"].endswith("referral-service")
    }
    assert wanted <= offered
    assert all(
        {"kn", "en", "hi"} <= {c["code"] for cc in d["communication"] for c in cc["coding"]}
        for d in services
    )
    orgs = {d["providedBy"]["reference"] for d in services}
    labelled = [d for d in PARTNERS if f"{d['resourceType']}/{d['id']}" in orgs | areas] + services
    assert len(labelled) >= 17 and all("Demo — invented" in d["name"] for d in labelled)


def test_readme_explains_every_template() -> None:
    readme = (Path(SHIPPED_TEMPLATES) / "README.md").read_text()
    assert all(f"`{d['id']}`" in readme for d in TEMPLATES)


def _actions(node: dict) -> list[dict]:
    out = []
    for action in node.get("action", []):
        out.append(action)
        out.extend(_actions(action))
    return out
