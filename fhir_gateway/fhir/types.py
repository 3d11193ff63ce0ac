"""The resource types this server stores and serves (one place; the CapabilityStatement reads it)."""

from __future__ import annotations

__all__ = ["RESOURCE_TYPES", "is_supported"]

RESOURCE_TYPES: tuple[str, ...] = (
    "ActivityDefinition",
    "AllergyIntolerance",
    "Appointment",
    "AuditEvent",
    "Basic",
    "Bundle",
    "CarePlan",
    "CareTeam",
    "CodeSystem",
    "Communication",
    "CommunicationRequest",
    "ConceptMap",
    "Condition",
    "Consent",
    "Coverage",
    "Device",
    "DocumentReference",
    "Encounter",
    "Endpoint",
    "EpisodeOfCare",
    "Flag",
    "Goal",
    "Group",
    "HealthcareService",
    "Location",
    "MeasureReport",
    "Medication",
    "MedicationAdministration",
    "MedicationDispense",
    "MedicationRequest",
    "MedicationStatement",
    "MessageHeader",
    "Observation",
    "Organization",
    "Patient",
    "PlanDefinition",
    "Practitioner",
    "PractitionerRole",
    "Procedure",
    "Provenance",
    "Questionnaire",
    "QuestionnaireResponse",
    "RelatedPerson",
    "SearchParameter",
    "ServiceRequest",
    "Subscription",
    "Task",
    "ValueSet",
)

_SUPPORTED = frozenset(RESOURCE_TYPES)


def is_supported(resource_type: str) -> bool:
    return resource_type in _SUPPORTED
